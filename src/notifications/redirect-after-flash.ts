import type { Request, Response } from 'express';

/**
 * Saves the session, then redirects (303). express-session saves a changed session while the
 * response is being ended, after the headers may already have gone out, so a fast browser can
 * follow the redirect before the flash message is stored; saving first closes that race.
 */
export async function redirectAfterSave(req: Request, res: Response, location: string): Promise<void> {
  if (req.session) await new Promise<void>((resolve, reject) => req.session.save((err) => (err ? reject(err) : resolve())));
  res.redirect(303, location);
}
