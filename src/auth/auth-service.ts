import type { Config } from '../config.ts';
import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { AppError, ConflictError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Balance } from '../ledger/ledger-types.ts';
import type { AuditLog } from './audit-log.ts';
import { claimSignupBonus } from './signup-bonus-store.ts';
import type { CurrentUser } from './auth-types.ts';
import type { LoginThrottle } from './login-throttle.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { findUserRowByEmail, insertUser, mapUser, touchLastLogin } from './users-store.ts';
import type { LoginBody, SignupBody } from './auth-schemas.ts';

/** Where a request came from, for the audit log and the throttle. */
export interface RequestContext {
  ip: string | null;
  userAgent: string | null;
}

/** 401 for a failed login: the same text whether the email or the password was wrong. */
export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, 'invalid_credentials', 'Unauthorized', 'Email or password is incorrect.');
  }
}

export type AuthService = ReturnType<typeof createAuthService>;

/**
 * What a sign-up brings besides the form (issue 17), read from the browser's cookies by the
 * caller: the referral link it came through, its visitor-trial lead, and its browser id.
 */
export interface SignupExtras {
  referralCode?: string | undefined;
  leadId?: string | undefined;
  browserId?: string | undefined;
}

/**
 * Accounts: sign-up (with the signup bonus) and password login with throttling. HTTP-free: the API and the pages both call it; the session itself is set by the caller
 * (see `establishSession`).
 */
export function createAuthService(deps: {
  db: Db;
  ledger: Ledger;
  config: Pick<Config, 'signupBonus'>;
  audit: AuditLog;
  throttle: LoginThrottle;
  /** Called in the sign-up transaction (e.g. to write the email-verification message). */
  onSignup?: (trx: Trx, user: CurrentUser) => Promise<void>;
  /** Called in the sign-up transaction with the {@link SignupExtras} (referral, visitor trial). */
  onSignupExtras?: (trx: Trx, user: CurrentUser, extras: SignupExtras) => Promise<void>;
}) {
  const { db, ledger, config, audit, throttle } = deps;

  return {
    /**
     * Creates a user (role `user`) and grants the signup bonus (`config.signupBonus`, a
     * `signup_bonus` lot expiring after `days`) in one transaction, with transfer id
     * `signup_bonus:<userId>`: exactly once per user, and once per canonical email address
     * ({@link claimSignupBonus}: `a+x@b` counts as `a@b`). A taken email → {@link ConflictError} (409),
     * decided by the unique constraint, so concurrent retries cannot create two accounts.
     */
    async signup(input: SignupBody, ctx: RequestContext, extras: SignupExtras = {}): Promise<{ user: CurrentUser; balance: Balance }> {
      await throttle.signupAttempt(ctx.ip ?? 'unknown');
      const passwordHash = await hashPassword(input.password);
      try {
        const user = await inTransaction(db, async (trx) => {
          const created = await insertUser(trx, { email: input.email, name: input.name, passwordHash, role: 'user' });
          const bonus = config.signupBonus;
          // One bonus per mailbox: a+x@b counts as a@b (the account is created either way).
          const bonusMillicredits = bonus.millicredits > 0 && (await claimSignupBonus(trx, created.email, created.id)) ? bonus.millicredits : 0;
          if (bonusMillicredits > 0) {
            await ledger.grant(
              {
                transferId: `signup_bonus:${created.id}`,
                userId: created.id,
                millicredits: bonus.millicredits,
                kind: 'signup_bonus',
                expiresAt: new Date(Date.now() + bonus.days * 86_400_000),
                actor: 'system',
                reason: 'Welcome bonus',
                reference: { type: 'user', id: created.id },
              },
              trx,
            );
          }
          await touchLastLogin(trx, created.id);
          await deps.onSignup?.(trx, created);
          await deps.onSignupExtras?.(trx, created, extras);
          await audit.record(
            {
              actor: `user:${created.id}`,
              actorUserId: created.id,
              action: 'auth.signup',
              target: { type: 'user', id: created.id },
              ...ctx,
              details: { email: created.email, signupBonusMillicredits: bonusMillicredits },
            },
            trx,
          );
          return created;
        });
        return { user, balance: await ledger.getBalance(user.id) };
      } catch (err) {
        if (isUniqueViolation(err, 'users_email_unique')) {
          throw new ConflictError('An account with this email already exists. Log in instead.', 'email_taken');
        }
        throw err;
      }
    },

    /**
     * Checks an email and password. Throttled per account and per IP before the password is
     * checked (429, `Retry-After`); a wrong email and a wrong password both give
     * {@link InvalidCredentialsError} (401) after the same bcrypt work. Records `auth.login` /
     * `auth.login_failed` in the audit log.
     */
    async login(input: LoginBody, ctx: RequestContext): Promise<{ user: CurrentUser; balance: Balance }> {
      const ip = ctx.ip ?? 'unknown';
      await throttle.attempt(input.email, ip);
      const row = await findUserRowByEmail(db, input.email);
      const ok = await verifyPassword(input.password, row?.password_hash);
      if (!row || !ok) {
        await audit.record({
          actor: row ? `user:${row.id}` : 'anonymous',
          actorUserId: row?.id ?? null,
          action: 'auth.login_failed',
          target: row ? { type: 'user', id: row.id } : null,
          ...ctx,
          details: { email: input.email, reason: row ? 'wrong_password' : 'unknown_email' },
        });
        throw new InvalidCredentialsError();
      }
      await throttle.succeeded(input.email, ip);
      const user = mapUser(row);
      await touchLastLogin(db, user.id);
      await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'auth.login', target: { type: 'user', id: user.id }, ...ctx });
      return { user, balance: await ledger.getBalance(user.id) };
    },

    /** Records a sign-out. */
    async loggedOut(user: CurrentUser, ctx: RequestContext): Promise<void> {
      await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'auth.logout', target: { type: 'user', id: user.id }, ...ctx });
    },
  };
}

/** The user as the API shows them: `{id, email, name, role}` (never the password hash). */
export function userJson(user: CurrentUser): CurrentUser {
  return { id: user.id, email: user.email, name: user.name, role: user.role };
}
