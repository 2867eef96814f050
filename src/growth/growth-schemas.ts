import { z } from 'zod';
import { Email } from '../auth/auth-schemas.ts';
import { schemas } from '../http/validate.ts';
import { creditsToMillicredits, InvalidAmountError } from '../ledger/credits.ts';

/** zod schemas of the growth routes (API and forms share them; form fields arrive as strings). */

const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** Positive credits (JSON number or decimal string, ≤ 3 decimals) → integer millicredits. */
export const PositiveCredits = schemas.credits.transform((v, ctx) => {
  try {
    return creditsToMillicredits(v);
  } catch (err) {
    if (!(err instanceof InvalidAmountError)) throw err;
    ctx.addIssue({ code: 'custom', message: err.message.replace(/^.* is not a valid amount of credits: /, 'must be a valid amount of credits: ') });
    return z.NEVER;
  }
});

const PositiveInt = (max: number) =>
  z.preprocess(
    (v) => (typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v),
    z.number({ error: 'must be a whole number' }).int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`),
  );

const Instant = z
  .string()
  .refine((s) => /^\d{4}-\d{2}-\d{2}$/.test(s) || z.iso.datetime({ offset: true }).safeParse(s).success || z.iso.datetime({ local: true }).safeParse(s).success, 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time')
  .transform((s) => new Date(/^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00.000Z` : /[zZ]|[+-]\d{2}:\d{2}$/.test(s) ? s : `${s}Z`))
  .refine((d) => !Number.isNaN(d.getTime()), 'must be a real date');

const Bool = z.preprocess((v) => (v === 'on' || v === 'true' ? true : v === 'false' || v === undefined ? false : v), z.boolean({ error: 'must be true or false' }));

/** A promo code's text: 3–40 letters, digits, `-` or `_` (compared without letter case). */
export const CodeText = z
  .string({ error: 'is required' })
  .trim()
  .regex(/^[A-Za-z0-9_-]{3,40}$/, 'must be 3–40 letters, digits, - or _');

/** `POST /api/admin/promo-codes` and the /admin/promo-codes form. */
export const CreatePromoCodeBody = z
  .object({
    code: CodeText,
    credits: PositiveCredits,
    creditsExpireDays: z.preprocess(blankToUndefined, PositiveInt(3650).optional()),
    validFrom: z.preprocess(blankToUndefined, Instant.optional()),
    validUntil: z.preprocess(blankToUndefined, Instant.optional()),
    maxRedemptions: z.preprocess(blankToUndefined, PositiveInt(10_000_000).optional()),
    perUserLimit: z.preprocess(blankToUndefined, PositiveInt(1000).default(1)),
    newUsersOnly: Bool.default(false),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (v.validFrom && v.validUntil && v.validUntil <= v.validFrom) ctx.addIssue({ code: 'custom', path: ['validUntil'], message: 'must be after validFrom' });
    if (v.validUntil && v.validUntil.getTime() <= Date.now()) ctx.addIssue({ code: 'custom', path: ['validUntil'], message: 'must be in the future' });
  });
export type CreatePromoCodeBody = z.infer<typeof CreatePromoCodeBody>;

export const PromoCodeParams = z.object({ id: schemas.uuid }).strict();

/** `POST /api/credits/redeem` and the redeem forms: the code as typed (any letter case). */
export const RedeemBody = z
  .object({
    code: z.string({ error: 'is required' }).trim().min(1, 'is required').max(100, 'must be at most 100 characters'),
  })
  .strict();
export type RedeemBody = z.infer<typeof RedeemBody>;

/** `POST /api/credits/gifts` and the gift form: whom, how many credits (> 0, ≤ 3 decimals), an optional note. */
export const GiftBody = z
  .object({
    toEmail: Email,
    credits: PositiveCredits,
    message: z.preprocess(
      blankToUndefined,
      z
        .string()
        .max(500, 'must be at most 500 characters')
        .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), 'must not contain control characters')
        .optional(),
    ),
  })
  .strict();
export type GiftBody = z.infer<typeof GiftBody>;

/** `POST /api/gifts/claim`: the token of the claim link. */
export const ClaimBody = z.object({ token: z.string({ error: 'is required' }).min(1, 'is required').max(200, 'is too long') }).strict();

/** `POST /api/credits/gift-packs` and its form: the pack to buy as a gift. */
export const GiftPackBody = z.object({ packageId: z.string({ error: 'is required' }).min(1, 'is required').max(64, 'is too long') }).strict();
