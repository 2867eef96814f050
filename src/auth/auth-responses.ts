import { z } from 'zod';
import { BalanceJson, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the auth JSON the API returns (OpenAPI document, response checks in tests). */

export const UserJson = z.object({ id: z.uuid(), email: z.string(), name: z.string(), role: z.enum(['user', 'admin']) }).meta({ id: 'User' });

export const UserWithBalance = z.object({ user: UserJson, balance: BalanceJson });

export const PasswordRequirementsJson = z.object({
  minLength: z.number().int(),
  maxLength: z.number().int(),
  notEmail: z.boolean(),
  notCommon: z.boolean(),
  rules: z.array(z.string()),
});

export const SessionsResponse = z.object({
  sessions: z.array(
    z.object({
      id: z.string(),
      current: z.boolean(),
      userAgent: z.string().nullable(),
      ip: z.string().nullable(),
      signedInAt: DateTime.nullable(),
      lastActiveAt: DateTime.nullable(),
      expiresAt: DateTime.nullable(),
    }),
  ),
});

/** `{status, detail?}` answers of the recovery routes. */
export const StatusResponse = z.object({ status: z.string(), detail: z.string().optional() });
