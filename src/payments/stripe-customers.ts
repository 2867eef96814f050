import type Stripe from 'stripe';
import type { Db } from '../db/database.ts';
import * as store from './payments-store.ts';
import { customerIdOf, MalformedEventError, type MoreHandler } from './stripe-webhook.ts';

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
    /**
     * The user's Stripe customer id, created on first use (concurrent first calls create one:
     * idempotency key). After `customer.deleted` made Tally forget a customer, the key can replay
     * the deleted one (Stripe keeps idempotent responses 24 hours): a replayed customer that is
     * deleted is followed by a create under a key naming it, so the user gets a new, live customer.
     */
    async customerFor(user: { id: string; email: string; name: string }): Promise<string> {
      const known = await store.findCustomerId(db, user.id);
      if (known) return known;
      const testClock = deps.useEmulator ? await defaultTestClock() : undefined;
      const params = { email: user.email, name: user.name, metadata: { userId: user.id }, ...(testClock ? { test_clock: testClock } : {}) };
      let key = `tally-customer-${user.id}`;
      for (let attempt = 1; ; attempt++) {
        const customer = await stripe.customers.create(params, { idempotencyKey: key });
        const replayed = customer.lastResponse?.headers?.['idempotent-replayed'] === 'true';
        if (!replayed || attempt >= 5 || !(await stripe.customers.retrieve(customer.id)).deleted) return store.saveCustomerId(db, user.id, customer.id);
        key = `tally-customer-${user.id}-after-${customer.id}`;
      }
    },

    /**
     * Stripe webhook handlers of customers (the webhook's `more` map): `customer.deleted` (sent when
     * an erasure deletes the customer, or someone deletes it in Stripe's dashboard) is acknowledged,
     * and the user who still has that customer id stored has it cleared, so their next purchase
     * creates a new customer. Outcomes: `customer_forgotten`, or `ignored:unknown_customer` when no
     * user has it (already forgotten, or not Tally's customer; not a problem either way).
     * @throws MalformedEventError (400, recorded) when `data.object.id` is missing
     */
    webhookHandlers: {
      'customer.deleted': {
        handle: async (event, trx) => {
          const id = customerIdOf(event);
          if (!id) throw new MalformedEventError('data.object.id is missing', { id: event.id, type: event.type });
          return (await store.forgetCustomerId(trx, id)) ? 'customer_forgotten' : 'ignored:unknown_customer';
        },
      },
    } satisfies Record<string, MoreHandler>,
  };
}

export type StripeCustomers = ReturnType<typeof createStripeCustomers>;
