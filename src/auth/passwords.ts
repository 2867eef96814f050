import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import bcrypt from 'bcrypt';

/**
 * Passwords: the policy (12–128 characters, not the email, not a common password) and bcrypt
 * hashing at cost 12 (OWASP Password Storage Cheat Sheet: bcrypt with a work factor of 10 or more).
 *
 * bcrypt only reads the first 72 bytes of its input, and a 128-character password can be up to
 * 512 bytes of UTF-8. So the password (Unicode-normalized, NFKC as NIST SP 800-63B advises) is first
 * HMAC-SHA256'd with a fixed, app-specific key and base64-encoded: 44 ASCII bytes, no NUL, every
 * character counts. The key only separates these pre-hashes from plain SHA-256 dumps ("password
 * shucking"); it is not a secret.
 */

export const BCRYPT_COST = 12;
export const PASSWORD_MIN_LENGTH = 12;
export const PASSWORD_MAX_LENGTH = 128;
const PREHASH_KEY = 'tally.password.v1';

/** What `GET /api/auth/password-requirements` returns, for forms and API clients. */
export interface PasswordRequirements {
  minLength: number;
  maxLength: number;
  /** The password may not equal the email address (or the part before the @). */
  notEmail: boolean;
  /** The password may not be on the shipped list of common passwords. */
  notCommon: boolean;
  /** The same rules as sentences, for showing under a password field. */
  rules: string[];
}

/** The password policy, described. */
export function passwordRequirements(): PasswordRequirements {
  return {
    minLength: PASSWORD_MIN_LENGTH,
    maxLength: PASSWORD_MAX_LENGTH,
    notEmail: true,
    notCommon: true,
    rules: [
      `At least ${PASSWORD_MIN_LENGTH} and at most ${PASSWORD_MAX_LENGTH} characters.`,
      'Not your email address.',
      'Not a commonly used password.',
    ],
  };
}

let common: Set<string> | undefined;

/** The shipped common-password list (src/auth/common-passwords.txt), loaded once on first use. */
function commonPasswords(): Set<string> {
  if (!common) {
    const file = path.join(path.dirname(fileURLToPath(import.meta.url)), 'common-passwords.txt');
    common = new Set(
      fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '' && !l.startsWith('#')),
    );
  }
  return common;
}

/** True when `password` (case-insensitively) is on the common-password list. */
export function isCommonPassword(password: string): boolean {
  return commonPasswords().has(password.normalize('NFKC').toLowerCase());
}

/**
 * Checks `password` against the policy; returns the broken rules as messages ([] = acceptable).
 * Length counts Unicode code points. `email` is the normalized email of the account, if known.
 */
export function passwordProblems(password: string, email?: string): string[] {
  const problems: string[] = [];
  const length = [...password].length;
  if (length < PASSWORD_MIN_LENGTH) problems.push(`must be at least ${PASSWORD_MIN_LENGTH} characters`);
  if (length > PASSWORD_MAX_LENGTH) problems.push(`must be at most ${PASSWORD_MAX_LENGTH} characters`);
  const lowered = password.normalize('NFKC').trim().toLowerCase();
  if (email) {
    const e = email.trim().toLowerCase();
    const local = e.split('@')[0] ?? '';
    if (lowered === e || (local.length > 0 && lowered === local)) problems.push('must not be your email address');
  }
  if (problems.length === 0 && isCommonPassword(password)) problems.push('is too common; choose a less guessable password');
  return problems;
}

function prehash(password: string): string {
  return crypto.createHmac('sha256', PREHASH_KEY).update(password.normalize('NFKC'), 'utf8').digest('base64');
}

/** Hashes a password with bcrypt at cost {@link BCRYPT_COST} (≈ 200–250 ms of CPU, off the event loop). */
export async function hashPassword(password: string): Promise<string> {
  return bcrypt.hash(prehash(password), BCRYPT_COST);
}

let dummyHash: Promise<string> | undefined;

/**
 * True when `password` matches `hash`. With no hash (unknown email), compares against a dummy
 * hash of the same cost anyway, so a wrong email and a wrong password take the same time.
 * A malformed stored hash counts as a mismatch.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  if (hash === undefined) {
    dummyHash ??= bcrypt.hash(crypto.randomBytes(16).toString('hex'), BCRYPT_COST);
    await bcrypt.compare(prehash(password), await dummyHash).catch(() => false);
    return false;
  }
  try {
    return await bcrypt.compare(prehash(password), hash);
  } catch {
    return false;
  }
}
