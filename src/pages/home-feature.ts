import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** The landing page. */
export function createHomeFeature(_deps: AppDeps): Feature {
  const pages = express.Router();
  pages.get('/', (_req, res) => {
    res.render('home', { title: 'Prepaid credits for metered jobs' });
  });
  return { pages };
}
