import Stripe from 'stripe';
import type { Config } from '../config.ts';

/**
 * The one Stripe client. With `STRIPE_SECRET_KEY` (and no `STRIPE_API_BASE`) it talks to
 * api.stripe.com; otherwise the SDK's host/port/protocol options point it at `STRIPE_API_BASE` or
 * at the built-in emulator (`emulatorUrl`). Either way the same SDK calls run.
 */
export function createStripeClient(config: Pick<Config, 'stripe'>, emulatorUrl?: string): Stripe {
  const { secretKey, apiBase } = config.stripe;
  if (secretKey && !apiBase) return new Stripe(secretKey, { maxNetworkRetries: 2, appInfo: { name: 'Tally' } });
  const base = new URL(apiBase ?? emulatorUrl ?? `http://127.0.0.1:${config.stripe.emulatorPort}`);
  const protocol = base.protocol === 'https:' ? 'https' : 'http';
  return new Stripe(secretKey ?? 'sk_test_tally_emulator', {
    host: base.hostname,
    port: Number(base.port || (protocol === 'https' ? 443 : 80)),
    protocol,
    maxNetworkRetries: 2,
    appInfo: { name: 'Tally' },
  });
}
