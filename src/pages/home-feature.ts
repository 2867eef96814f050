import express from 'express';
import type { Feature } from '../feature.ts';

/** The landing page. */
export function createHomeFeature(): Feature {
  const pages = express.Router();
  pages.get('/', (_req, res) => {
    res.render('home', { title: 'Prepaid credits for metered jobs' });
  });
  return { pages };
}
