import dns from 'node:dns/promises';
import net from 'node:net';
import { AppError } from '../http/errors.ts';

/**
 * SSRF protection for outbound webhooks (OWASP SSRF Prevention Cheat Sheet). In production an
 * endpoint must be https and its host may resolve only to public addresses — checked when it is
 * registered and again, on the addresses actually connected to, at every delivery (DNS can change).
 * In development and tests any http(s) URL is allowed, e.g. http://127.0.0.1:8080/hook.
 */

/** 400-style refusal of a URL; `reason` says why, for the field error or the delivery log. */
export class UnsafeUrlError extends AppError {
  constructor(readonly reason: string) {
    super(400, 'unsafe_webhook_url', 'Bad request', `The webhook URL is not allowed: ${reason}.`);
  }
}

/** Loopback, private, link-local, shared, documentation, multicast and reserved ranges (IANA special-purpose registries). */
const BLOCKED = new net.BlockList();
for (const [net4, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['198.51.100.0', 24],
  ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) BLOCKED.addSubnet(net4, prefix, 'ipv4');
for (const [net6, prefix] of [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['64:ff9b:1::', 48], ['100::', 64], ['2001::', 23], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
] as const) BLOCKED.addSubnet(net6, prefix, 'ipv6');

/** True when `address` (IPv4 or IPv6, incl. IPv4-mapped IPv6) is not a public unicast address. */
export function isBlockedAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return isBlockedAddress(mapped[1]!);
  const family = net.isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

export type Resolver = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

/** The system resolver (getaddrinfo, like the HTTP client would use), all addresses. */
export const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export interface GuardOptions {
  production: boolean;
  resolve?: Resolver;
}

/**
 * Checks a webhook URL's form: http or https (https only in production), no user info, a host.
 * Throws {@link UnsafeUrlError}. Returns the parsed URL.
 */
export function checkUrlShape(raw: string, opts: Pick<GuardOptions, 'production'>): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UnsafeUrlError('it is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new UnsafeUrlError('only http and https URLs can receive webhooks');
  if (opts.production && url.protocol !== 'https:') throw new UnsafeUrlError('it must use https');
  if (url.username || url.password) throw new UnsafeUrlError('it must not contain a user name or password');
  if (!url.hostname) throw new UnsafeUrlError('it has no host');
  return url;
}

/**
 * Resolves the URL's host and returns the address to connect to. In production every resolved
 * address must be public (one private answer is enough to refuse: the client could pick it).
 * Throws {@link UnsafeUrlError} when it cannot be resolved or is not allowed.
 */
export async function resolveAllowedAddress(url: URL, opts: GuardOptions): Promise<{ address: string; family: number }> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  let answers: Array<{ address: string; family: number }>;
  if (net.isIP(host)) answers = [{ address: host, family: net.isIP(host) }];
  else {
    try {
      answers = await (opts.resolve ?? systemResolver)(host);
    } catch {
      throw new UnsafeUrlError(`its host ${host} does not resolve`);
    }
  }
  if (answers.length === 0) throw new UnsafeUrlError(`its host ${host} does not resolve`);
  if (opts.production) {
    const bad = answers.find((a) => isBlockedAddress(a.address));
    if (bad) throw new UnsafeUrlError(`${host} resolves to ${bad.address}, a loopback, private or link-local address`);
  }
  return answers[0]!;
}

/** Registration-time check: shape and, in production, resolution to public addresses only. */
export async function assertWebhookUrlAllowed(raw: string, opts: GuardOptions): Promise<URL> {
  const url = checkUrlShape(raw, opts);
  await resolveAllowedAddress(url, opts);
  return url;
}
