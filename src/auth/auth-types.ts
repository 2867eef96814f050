/** A signed-in user as the app sees them on `req.user`. */
export interface CurrentUser {
  id: string;
  email: string;
  name: string;
  role: 'user' | 'admin';
}

declare module 'express-session' {
  interface SessionData {
    userId?: string;
    /** When the user signed in (ms since epoch): the absolute lifetime counts from here. */
    authenticatedAt?: number;
    userAgent?: string;
    ip?: string;
  }
}

declare module 'express-serve-static-core' {
  interface Request {
    user?: CurrentUser;
  }
}
