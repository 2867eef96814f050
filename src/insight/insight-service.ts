import type Stripe from 'stripe';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import type { Payments } from '../payments/payments-service.ts';
import { createReceipts } from './receipts-service.ts';
import { createReports } from './reports-service.ts';
import { createUsageService } from './usage-service.ts';

/**
 * Insight (issue 18), built once by the composition root: the user's usage, stats and statements,
 * receipts (numbers, HTML view model, PDF), and the admin reports. Reads only; the one write is a
 * receipt number. `clock` is the ledger's clock in tests.
 */
export function createInsight(deps: {
  db: Db;
  ledger: Pick<Ledger, 'getBalance'>;
  stripe: Stripe;
  config: Readonly<Pick<Config, 'seller'>>;
  logger: Logger;
  payments: Pick<Payments, 'getPayment'>;
  clock?: () => Date;
}) {
  const { db, clock } = deps;
  return {
    usage: createUsageService({ db, ledger: deps.ledger, clock }),
    reports: createReports({ db, clock }),
    receipts: createReceipts({ db, stripe: deps.stripe, payments: deps.payments, seller: deps.config.seller, logger: deps.logger }),
  };
}

export type Insight = ReturnType<typeof createInsight>;
