import crypto from 'node:crypto';
import type { Request, Response } from 'express';

/**
 * The growth feature's cookies (issue 17), signed with HMAC-SHA256 under the session secret so a
 * visitor cannot forge a lead or a referral: `tally_ref` (the referral code of the link a visitor
 * came through, 30 days), `tally_lead` (a visitor's trial lead, 7 days), `tally_bid` (a random
 * browser id, 1 year; tells a referrer's own browser). HttpOnly, SameSite=Lax.
 */
export const COOKIES = { referral: 'tally_ref', lead: 'tally_lead', browser: 'tally_bid' } as const;

export type GrowthCookies = ReturnType<typeof createGrowthCookies>;

/** Reads one cookie of the request's `Cookie` header (RFC 6265 §5.4), or undefined. */
function readCookie(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0 || part.slice(0, i).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function createGrowthCookies(secret: string, secure: boolean) {
  const mac = (value: string) => crypto.createHmac('sha256', `${secret}:growth-cookie`).update(value).digest('base64url');

  function sign(value: string): string {
    return `${value}.${mac(value)}`;
  }
  function unsign(signed: string | undefined): string | undefined {
    if (!signed) return undefined;
    const i = signed.lastIndexOf('.');
    if (i <= 0) return undefined;
    const value = signed.slice(0, i);
    const given = Buffer.from(signed.slice(i + 1));
    const want = Buffer.from(mac(value));
    return given.length === want.length && crypto.timingSafeEqual(given, want) ? value : undefined;
  }

  return {
    /** The verified value of a signed cookie, or undefined (missing or tampered). */
    get(req: Request, name: string): string | undefined {
      return unsign(readCookie(req, name));
    },
    /** Sets a signed cookie for `maxAgeMs`. */
    set(res: Response, name: string, value: string, maxAgeMs: number): void {
      res.cookie(name, sign(value), { httpOnly: true, sameSite: 'lax', secure, maxAge: maxAgeMs, path: '/' });
    },
    clear(res: Response, name: string): void {
      res.clearCookie(name, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
    },
    /** This browser's id, set now when it has none yet. */
    browserId(req: Request, res: Response): string {
      const known = unsign(readCookie(req, COOKIES.browser));
      if (known) return known;
      const id = crypto.randomUUID();
      res.cookie(COOKIES.browser, sign(id), { httpOnly: true, sameSite: 'lax', secure, maxAge: 365 * 86_400_000, path: '/' });
      return id;
    },
  };
}
