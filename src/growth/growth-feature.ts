import express from 'express';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createGrowthPages } from './growth-pages.ts';
import { createGrowthRouter } from './growth-router.ts';

/** Promo codes, referrals, visitors' trial credits and gifts (issue 17): their API and pages. */
export function createGrowthFeature(services: Services): Feature {
  const { growth, ledger } = services;
  const api = express.Router();
  const pages = express.Router();
  api.use(createGrowthRouter({ promoCodes: growth.promoCodes, ledger, referrals: growth.referrals, cookies: growth.cookies, gifts: growth.gifts, giftPacks: growth.giftPacks, payments: services.payments }));
  pages.use(createGrowthPages({ promoCodes: growth.promoCodes, referrals: growth.referrals, cookies: growth.cookies, leads: growth.leads, gifts: growth.gifts, giftPacks: growth.giftPacks, payments: services.payments, config: services.config }));
  return { api, pages };
}
