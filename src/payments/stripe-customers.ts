import type Stripe from 'stripe';
import type { Db } from '../db/database.ts';
import * as store from './payments-store.ts';

/** The name of the emulator's test clock every customer joins when Tally runs without a Stripe key. */
export const DEFAULT_TEST_CLOCK_NAME = 'Tally default test clock';

export interface StripeCustomersDeps {
  db: Db;
  stripe: Stripe;
  /** True without a Stripe key: customers are attached to the default test clock. */
  useEmulator: boolean;
  clock?: () => Date;
}

/**
 * Each user's one Stripe customer, shared by pack purchases and subscriptions. Without a Stripe key
 * (the built-in emulator), every new customer is attached to the default test clock
 * (https://docs.stripe.com/billing/testing/test-clocks), so advancing that clock through the SDK
 * (`stripe.testHelpers.testClocks.advance`) renews subscriptions as time would.
 */
export function createStripeCustomers(deps: StripeCustomersDeps) {
  const { db, stripe } = deps;
  const clock = deps.clock ?? (() => new Date());
  let defaultClock: Promise<string> | undefined;

  /** The default test clock's id: found by name, or created (once, by idempotency key). */
  function defaultTestClock(): Promise<string> {
    defaultClock ??= (async () => {
      for await (const c of stripe.testHelpers.testClocks.list({ limit: 100 })) if (c.name === DEFAULT_TEST_CLOCK_NAME) return c.id;
      const created = await stripe.testHelpers.testClocks.create(
        { frozen_time: Math.floor(clock().getTime() / 1000), name: DEFAULT_TEST_CLOCK_NAME },
        { idempotencyKey: 'tally-default-test-clock' },
      );
      return created.id;
    })().catch((err: unknown) => {
      defaultClock = undefined;
      throw err;
    });
    return defaultClock;
  }

  return {
    defaultTestClock,
    /** The user's Stripe customer id, created on first use (concurrent first calls create one: idempotency key). */
    async customerFor(user: { id: string; email: string; name: string }): Promise<string> {
      const known = await store.findCustomerId(db, user.id);
      if (known) return known;
      const testClock = deps.useEmulator ? await defaultTestClock() : undefined;
      const customer = await stripe.customers.create(
        { email: user.email, name: user.name, metadata: { userId: user.id }, ...(testClock ? { test_clock: testClock } : {}) },
        { idempotencyKey: `tally-customer-${user.id}` },
      );
      return store.saveCustomerId(db, user.id, customer.id);
    },
  };
}

export type StripeCustomers = ReturnType<typeof createStripeCustomers>;
