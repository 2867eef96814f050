import crypto from 'node:crypto';
import { z } from 'zod';
import type { AuditLog } from '../auth/audit-log.ts';
import type { Db } from '../db/database.ts';
import { ForbiddenError, NotFoundError } from '../http/errors.ts';
import { periodBounds } from '../teams/spend-policy.ts';

/** The scopes a key may carry (issue 16). A key never reaches account, key, team or admin routes. */
export const API_KEY_SCOPES = ['tasks:read', 'tasks:write', 'credits:read'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];

/** Every key starts with this; 32 random bytes in base62 follow (43 characters). */
export const API_KEY_PREFIX = 'tly_live_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SECRET_CHARS = 43; // ⌈256 / log2(62)⌉

/** `bytes` as a fixed-width base62 string (big-endian, zero-padded to 43 characters for 32 bytes). */
export function base62(bytes: Buffer): string {
  let n = BigInt(`0x${bytes.toString('hex') || '0'}`);
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  return out.padStart(SECRET_CHARS, '0');
}

/**
 * SHA-256 of the whole key: keys are 256 random bits, so a fast hash is enough (no password
 * stretching), and looking up the full hash means the response time never depends on a prefix.
 */
export function hashApiKey(key: string): Buffer {
  return crypto.createHash('sha256').update(key, 'utf8').digest();
}

/** An API key as its owner sees it (never the secret, except once at creation). */
export interface ApiKey {
  id: string;
  userId: string;
  teamId: string | null;
  teamName: string | null;
  name: string;
  /** The first characters of the key, to recognise it (`tly_live_Ab3d…`). */
  prefix: string;
  scopes: ApiKeyScope[];
  /** Millicredits per UTC month; null = no limit. */
  monthlyCreditLimit: number | null;
  rateLimitPerMinute: number | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** Millicredits posted this UTC month through this key. */
  spentThisMonth: number;
}

/** The key of an authenticated request: who it acts for and what it may do. */
export interface AuthenticatedKey {
  id: string;
  userId: string;
  teamId: string | null;
  scopes: ApiKeyScope[];
  rateLimitPerMinute: number | null;
}

export const CreateApiKeyBody = z.object({
  name: z.string().trim().min(1).max(100),
  teamId: z.uuid().optional(),
  scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).max(3),
  monthlyCreditLimit: z.number().int().min(0).max(1_000_000_000).optional(),
  rateLimitPerMinute: z.number().int().min(1).max(10_000).optional(),
});

interface Row {
  id: string;
  user_id: string;
  team_id: string | null;
  team_name?: string | null;
  name: string;
  prefix: string;
  scopes: ApiKeyScope[];
  monthly_credit_limit: string | number | null;
  rate_limit_per_minute: number | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
  spent?: string | number;
}

const toKey = (r: Row): ApiKey => ({
  id: r.id,
  userId: r.user_id,
  teamId: r.team_id,
  teamName: r.team_name ?? null,
  name: r.name,
  prefix: r.prefix,
  scopes: r.scopes,
  monthlyCreditLimit: r.monthly_credit_limit === null ? null : Number(r.monthly_credit_limit),
  rateLimitPerMinute: r.rate_limit_per_minute,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
  spentThisMonth: Number(r.spent ?? 0),
});

export type ApiKeys = ReturnType<typeof createApiKeys>;

/**
 * API keys (issue 16): created with a name, scopes, optional team and limits; shown once; stored
 * as a SHA-256 hash only; revoked at once. Monthly limits are in millicredits (the JSON routes
 * convert from credits).
 */
export function createApiKeys(deps: { db: Db; audit: AuditLog }) {
  const { db, audit } = deps;
  return {
    /**
     * Creates a key for `userId` (a team key when `teamId`: the user must be an active member; the
     * key spends from the pool within that member's budget). Returns the key and its secret, which
     * is never stored or shown again. ForbiddenError (403) when not a member of the team.
     */
    async create(
      userId: string,
      input: { name: string; teamId?: string; scopes: ApiKeyScope[]; monthlyCreditLimit?: number; rateLimitPerMinute?: number },
      context: { ip?: string | null; userAgent?: string | null } = {},
    ): Promise<{ key: ApiKey; secret: string }> {
      const secret = `${API_KEY_PREFIX}${base62(crypto.randomBytes(32))}`;
      return db.transaction(async (trx) => {
        if (input.teamId) {
          const member = await trx('team_members').where({ team_id: input.teamId, user_id: userId }).whereNull('removed_at').first();
          if (!member) throw new ForbiddenError('You are not a member of this team.', 'not_a_team_member');
        }
        const [row] = (await trx('api_keys')
          .insert({
            user_id: userId,
            team_id: input.teamId ?? null,
            name: input.name,
            prefix: secret.slice(0, API_KEY_PREFIX.length + 6),
            secret_hash: hashApiKey(secret),
            scopes: [...new Set(input.scopes)],
            monthly_credit_limit: input.monthlyCreditLimit ?? null,
            rate_limit_per_minute: input.rateLimitPerMinute ?? null,
          })
          .returning('*')) as Row[];
        await audit.record(
          { actor: `user:${userId}`, actorUserId: userId, action: 'api_key.created', target: { type: 'api_key', id: row!.id }, ...context,
            details: { name: input.name, teamId: input.teamId ?? null, scopes: row!.scopes } },
          trx,
        );
        return { key: toKey(row!), secret };
      });
    },

    /** The user's keys, newest first, with this month's spend through each. */
    async list(userId: string, now = new Date()): Promise<ApiKey[]> {
      const { start } = periodBounds(now, 'month');
      const rows = (await db('api_keys as k')
        .leftJoin('teams as t', 't.id', 'k.team_id')
        .where('k.user_id', userId)
        .orderBy('k.created_at', 'desc')
        .select(
          'k.*',
          't.name as team_name',
          db.raw(
            `COALESCE((SELECT SUM(h.posted_amount) FROM spend_attributions s JOIN holds h ON h.id = s.hold_id
                        WHERE s.api_key_id = k.id AND s.created_at >= ? AND h.status = 'posted'), 0)::bigint AS spent`,
            [start],
          ),
        )) as Row[];
      return rows.map(toKey);
    },

    /** Revokes the user's key at once (the next request with it is refused). 404 unless it is theirs. Idempotent. */
    async revoke(userId: string, keyId: string, context: { ip?: string | null; userAgent?: string | null } = {}): Promise<void> {
      await db.transaction(async (trx) => {
        const row = await trx('api_keys').where({ id: keyId, user_id: userId }).forUpdate().first();
        if (!row) throw new NotFoundError('API key');
        if (row.revoked_at) return;
        await trx('api_keys').where({ id: keyId }).update({ revoked_at: trx.fn.now() });
        await audit.record({ actor: `user:${userId}`, actorUserId: userId, action: 'api_key.revoked', target: { type: 'api_key', id: keyId }, ...context }, trx);
      });
    },

    /**
     * Which key placed each of these holds (usage by key): hold id → the key's name and prefix.
     * Holds placed without a key are absent.
     */
    async keysOfHolds(holdIds: string[]): Promise<Map<string, { name: string; prefix: string }>> {
      if (holdIds.length === 0) return new Map();
      const rows = (await db('spend_attributions as s')
        .join('api_keys as k', 'k.id', 's.api_key_id')
        .whereIn('s.hold_id', holdIds)
        .select('s.hold_id', 'k.name', 'k.prefix')) as Array<{ hold_id: string; name: string; prefix: string }>;
      return new Map(rows.map((r) => [r.hold_id, { name: r.name, prefix: r.prefix }]));
    },

    /**
     * The active key whose hash matches `presented`, or undefined. Always one indexed lookup of
     * the full hash, whatever the input looks like, so timing reveals nothing about prefixes.
     * A key of a team its owner no longer belongs to is refused too.
     */
    async authenticate(presented: string): Promise<AuthenticatedKey | undefined> {
      const row = (await db('api_keys as k')
        .leftJoin('team_members as m', function () {
          this.on('m.team_id', 'k.team_id').andOn('m.user_id', 'k.user_id');
        })
        .where('k.secret_hash', hashApiKey(presented))
        .whereNull('k.revoked_at')
        .where((w) => w.whereNull('k.team_id').orWhere((x) => x.whereNotNull('m.user_id').whereNull('m.removed_at')))
        .first('k.id', 'k.user_id', 'k.team_id', 'k.scopes', 'k.rate_limit_per_minute', 'k.last_used_at')) as
        | (Pick<Row, 'id' | 'user_id' | 'team_id' | 'scopes' | 'rate_limit_per_minute' | 'last_used_at'>)
        | undefined;
      if (!row) return undefined;
      if (!row.last_used_at || Date.now() - row.last_used_at.getTime() > 60_000) {
        await db('api_keys').where({ id: row.id }).update({ last_used_at: db.fn.now() });
      }
      return { id: row.id, userId: row.user_id, teamId: row.team_id, scopes: row.scopes, rateLimitPerMinute: row.rate_limit_per_minute };
    },
  };
}
