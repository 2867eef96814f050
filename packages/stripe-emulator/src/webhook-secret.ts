import fs from 'node:fs';
import path from 'node:path';
import { randomBase62 } from './stripe-ids.ts';

/** File in the data dir that keeps the generated emulator webhook secret between runs. */
export const WEBHOOK_SECRET_FILE = 'stripe-webhook-secret';

/**
 * The `whsec_…` secret the emulator signs webhooks with, and the app verifies them with.
 * `STRIPE_WEBHOOK_SECRET` when set; otherwise one generated on first use and kept in
 * `${dataDir}/stripe-webhook-secret` (mode 0600), so the app (`server.ts`) and a separate
 * `npm run stripe:emulator` process agree on it. Creating the file is atomic (write a temp file, then `link`): when two
 * processes race, both end up with the first one's secret.
 * @throws when the data dir cannot be created or the file holds something that is not `whsec_…`.
 */
export function resolveEmulatorWebhookSecret(config: { dataDir: string; stripe: { webhookSecret?: string | undefined } }): string {
  if (config.stripe.webhookSecret) return config.stripe.webhookSecret;
  const file = path.join(config.dataDir, WEBHOOK_SECRET_FILE);
  fs.mkdirSync(config.dataDir, { recursive: true });
  if (!fs.existsSync(file)) {
    // Write a temp file, then link it into place: the secret appears complete or not at all.
    const tmp = `${file}.${process.pid}.${randomBase62(8)}.tmp`;
    fs.writeFileSync(tmp, `whsec_${randomBase62(32)}\n`, { mode: 0o600 });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  const secret = fs.readFileSync(file, 'utf8').trim();
  if (!secret.startsWith('whsec_') || secret.length < 12) {
    throw new Error(`${file} does not hold a webhook secret (expected whsec_…); delete it to generate a new one`);
  }
  return secret;
}
