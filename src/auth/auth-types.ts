/** A signed-in user as the app sees them on `req.user`. */
export interface CurrentUser {
  id: string;
  email: string;
  name: string;
  role: 'user' | 'admin';
}

export type Role = CurrentUser['role'];

/** A one-time message shown on the next page rendered (set before a 303 redirect). */
export interface Flash {
  type: 'success' | 'error';
  message: string;
  /** Show a "Buy more credits" link after the message (not enough credits). */
  topUp?: boolean;
  /** Show a "Change your spending limits" link after the message (a spend cap refused it). */
  limits?: boolean;
}

declare module 'express-session' {
  interface SessionData {
    userId?: string;
    /** When the user signed in (ms since epoch): the absolute lifetime counts from here. */
    authenticatedAt?: number;
    userAgent?: string;
    ip?: string;
    flash?: Flash;
  }
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: CurrentUser;
  }
}
