import crypto from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { TooManyRequestsError, ValidationError } from '../http/errors.ts';
import type { AuditLog } from '../auth/audit-log.ts';
import type { RequestContext } from '../auth/auth-service.ts';
import { LOGIN_RATE_LIMIT_TABLE } from '../auth/login-throttle.ts';
import { hashPassword, passwordProblems } from '../auth/passwords.ts';
import type { SessionsService } from '../auth/sessions-service.ts';
import { findUserRowByEmail } from '../auth/users-store.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import type { Logger } from '../logger.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import * as store from './auth-tokens-store.ts';

/** A reset link is valid for 30 minutes (issue 13; OWASP Forgot Password Cheat Sheet). */
export const RESET_TOKEN_MINUTES = 30;
/** A verification link is valid for 7 days. */
export const VERIFY_TOKEN_DAYS = 7;

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
/** A fresh token (32 random bytes, base64url: 43 characters) and the hash that is stored. */
function newToken(): { token: string; hash: string } {
  const token = crypto.randomBytes(32).toString('base64url');
  return { token, hash: sha256(token) };
}

export interface RecoveryDeps {
  db: Db;
  pgPool: pg.Pool;
  config: Pick<Config, 'appUrl' | 'passwordResetLimit'>;
  outbox: EmailOutbox;
  sessions: SessionsService;
  audit: AuditLog;
  logger: Logger;
  clock?: () => Date;
}

export type RecoveryService = ReturnType<typeof createRecoveryService>;

/**
 * Password reset by email and email verification (OWASP Forgot Password Cheat Sheet): the same
 * answer whether or not the address has an account, tokens stored only as hashes, single use
 * (one conditional UPDATE), valid 30 minutes; a new password revokes every session and is
 * confirmed by email.
 */
export function createRecoveryService(deps: RecoveryDeps) {
  const { db, config, outbox, sessions, audit } = deps;
  const clock = deps.clock ?? (() => new Date());
  const limits = config.passwordResetLimit;
  const common = { storeClient: deps.pgPool, storeType: 'pool', tableName: LOGIN_RATE_LIMIT_TABLE, tableCreated: true, duration: Math.max(1, Math.ceil(limits.windowMs / 1000)) };
  const byIp = new RateLimiterPostgres({ ...common, keyPrefix: 'reset_ip', points: limits.maxPerIp });
  const byEmail = new RateLimiterPostgres({ ...common, keyPrefix: 'reset_email', points: limits.maxPerEmail });
  const url = (path: string) => `${config.appUrl}${path}`;
  const inFlight = new Set<Promise<void>>();

  /** Consumes one point; the seconds to wait when the key is used up, else 0. A store failure throws (fail closed). */
  async function take(limiter: RateLimiterPostgres, key: string): Promise<number> {
    try {
      await limiter.consume(sha256(key));
      return 0;
    } catch (err) {
      if (err instanceof RateLimiterRes) return Math.max(1, Math.ceil(err.msBeforeNext / 1000));
      throw err;
    }
  }

  return {
    /**
     * Starts a reset for `email`. Counts the request against the per-IP limit and throws
     * {@link TooManyRequestsError} (429) past it, before any lookup. Otherwise returns at once with
     * `work`: the lookup and, for an existing account within the per-email limit, the token and the
     * email, done after the caller has answered 202. So the answer and its timing are the same
     * whether or not the address has an account (OWASP Forgot Password Cheat Sheet). `work` never
     * rejects (failures are logged).
     */
    async requestReset(email: string, ctx: RequestContext): Promise<{ work: Promise<void> }> {
      const wait = await take(byIp, ctx.ip ?? 'unknown');
      if (wait > 0) throw new TooManyRequestsError(wait, 'Too many password reset requests from this network. Try again later.');
      const work = (async () => {
        const emailWait = await take(byEmail, email);
        const user = await findUserRowByEmail(db, email);
        if (!user || emailWait > 0) return;
        const { token, hash } = newToken();
        const now = clock();
        await inTransaction(db, async (trx) => {
          await store.insertToken(trx, { userId: user.id, purpose: 'password_reset', tokenHash: hash, email: user.email, expiresAt: new Date(now.getTime() + RESET_TOKEN_MINUTES * 60_000) });
          await outbox.enqueue(trx, {
            type: 'password_reset',
            to: user.email,
            userId: user.id,
            data: { name: user.name, resetUrl: url(`/reset-password?token=${token}`), minutes: RESET_TOKEN_MINUTES },
          });
          await audit.record({ actor: 'anonymous', actorUserId: null, action: 'auth.password_reset_requested', target: { type: 'user', id: user.id }, ...ctx }, trx);
        });
      })()
        .catch((err: unknown) => deps.logger.error({ err }, 'password reset request failed'))
        .finally(() => inFlight.delete(work));
      inFlight.add(work);
      return { work };
    },

    /** Resolves when every reset request accepted so far has been handled (tests, shutdown). */
    async settled(): Promise<void> {
      await Promise.all([...inFlight]);
    },

    /** True when `token` is a usable reset token now (for the page, before the form is shown). */
    async isResetTokenUsable(token: string): Promise<boolean> {
      return Boolean(await store.findUsableToken(db, 'password_reset', sha256(token), clock()));
    },

    /**
     * Sets a new password with a reset token. The password must meet the sign-up policy (400 on
     * `body.password`); an unknown, used or expired token is a 400 on `body.token`. In one
     * transaction: the token is used, the hash replaced, other reset links retired, every session
     * of the user revoked and a "your password was changed" email written.
     */
    async confirmReset(token: string, password: string, ctx: RequestContext): Promise<{ userId: string }> {
      const hash = sha256(token);
      const found = await store.findUsableToken(db, 'password_reset', hash, clock());
      if (!found) throw new ValidationError([{ field: 'body.token', message: 'is invalid or has expired; ask for a new link' }]);
      const problems = passwordProblems(password, found.email);
      if (problems.length > 0) throw new ValidationError(problems.map((message) => ({ field: 'body.password', message })));
      const passwordHash = await hashPassword(password);
      const now = clock();
      return inTransaction(db, async (trx) => {
        const used = await store.consumeToken(trx, 'password_reset', hash, now);
        if (!used) throw new ValidationError([{ field: 'body.token', message: 'is invalid or has expired; ask for a new link' }]);
        await store.setPasswordHash(trx, used.userId, passwordHash);
        await store.retireTokens(trx, used.userId, 'password_reset', now);
        const revoked = await sessions.revokeAllSessions(used.userId, ctx, trx);
        const user = (await findUserRowByEmail(trx, used.email)) ?? { name: '', email: used.email };
        await outbox.enqueue(trx, {
          type: 'password_changed',
          to: used.email,
          userId: used.userId,
          data: { name: user.name, when: viewHelpers.dateTime(now), forgotUrl: url('/forgot-password') },
        });
        await audit.record({ actor: `user:${used.userId}`, actorUserId: used.userId, action: 'auth.password_reset', target: { type: 'user', id: used.userId }, ...ctx, details: { sessionsRevoked: revoked } }, trx);
        return { userId: used.userId };
      });
    },

    /** Writes a verification email for the user's current address in `trx` (sign-up, or a resend). */
    async sendVerification(trx: Db | Trx, user: { id: string; email: string; name: string }): Promise<void> {
      const { token, hash } = newToken();
      await store.insertToken(trx, { userId: user.id, purpose: 'email_verification', tokenHash: hash, email: user.email, expiresAt: new Date(clock().getTime() + VERIFY_TOKEN_DAYS * 86_400_000) });
      await outbox.enqueue(trx, { type: 'email_verification', to: user.email, userId: user.id, data: { name: user.name, verifyUrl: url(`/verify-email?token=${token}`) } });
    },

    /** Sends a new verification link unless the address is verified already; true when one was written. */
    async resendVerification(user: { id: string; email: string; name: string }): Promise<boolean> {
      if (await store.userVerifiedAt(db, user.id)) return false;
      await inTransaction(db, (trx) => this.sendVerification(trx, user));
      return true;
    },

    /** Marks the address verified with a token (400 on `body.token` when unknown, used or expired). */
    async verifyEmail(token: string): Promise<{ userId: string }> {
      const now = clock();
      return inTransaction(db, async (trx) => {
        const used = await store.consumeToken(trx, 'email_verification', sha256(token), now);
        if (!used || !(await store.markEmailVerified(trx, used.userId, used.email, now))) {
          throw new ValidationError([{ field: 'body.token', message: 'is invalid or has expired; ask for a new link from your account page' }]);
        }
        return { userId: used.userId };
      });
    },

    /** When the user's address was verified, or null. */
    verifiedAt(userId: string): Promise<Date | null> {
      return store.userVerifiedAt(db, userId);
    },
  };
}
