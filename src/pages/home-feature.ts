import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import type { Feature } from '../feature.ts';

const PUBLIC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../public');

/**
 * The landing page, and the favicon at the two addresses browsers ask for (`/favicon.ico` without
 * being told, `/favicon.svg` from the layout's `<link rel="icon">`). The icons are served before
 * the session middleware: no session lookup for an icon. Cached for a day.
 */
export function createHomeFeature(): Feature {
  const raw = express.Router();
  raw.get('/favicon.ico', (_req, res) => res.sendFile(path.join(PUBLIC, 'favicon.ico'), { maxAge: '1d' }));
  raw.get('/favicon.svg', (_req, res) => res.sendFile(path.join(PUBLIC, 'favicon.svg'), { maxAge: '1d' }));

  const pages = express.Router();
  pages.get('/', (_req, res) => {
    res.render('home', { title: 'Prepaid credits for metered jobs' });
  });
  return { raw, pages };
}
