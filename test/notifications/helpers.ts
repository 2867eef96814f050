import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';

/** A real SMTP server in this process (smtp-server), keeping every message it accepted, parsed. */
export interface TestSmtp {
  url: string;
  received: ParsedMail[];
  /** The next `n` messages are answered with `code` (e.g. 451 temporary, 550 permanent). */
  rejectNext(n: number, code: number): void;
  close(): Promise<void>;
}

export async function startSmtp(): Promise<TestSmtp> {
  const received: ParsedMail[] = [];
  let rejects: { n: number; code: number } = { n: 0, code: 451 };
  const server = new SMTPServer({
    authOptional: true,
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, _session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (rejects.n > 0) {
          rejects.n--;
          const err = new Error(rejects.code >= 500 ? 'mailbox unavailable' : 'try again later') as Error & { responseCode: number };
          err.responseCode = rejects.code;
          return callback(err);
        }
        simpleParser(Buffer.concat(chunks))
          .then((mail) => {
            received.push(mail);
            callback();
          })
          .catch(callback);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.server.address() as AddressInfo;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    rejectNext(n, code) {
      rejects = { n, code };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ReceivedHook {
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A local HTTP receiver for webhooks: records each request; answers with the queued statuses, then 200. */
export interface TestReceiver {
  url: string;
  requests: ReceivedHook[];
  respondWith(...statuses: number[]): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<TestReceiver> {
  const requests: ReceivedHook[] = [];
  let queue: number[] = [];
  let always: number | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = queue.shift() ?? always ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    requests,
    respondWith(...statuses) {
      queue = statuses;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The real clock plus an offset that tests move forward by hand. */
export function manualClock() {
  let offset = 0;
  const clock = () => new Date(Date.now() + offset);
  return Object.assign(clock, {
    advance(ms: number) {
      offset += ms;
    },
  });
}
