import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPrivacyService } from '../../src/privacy/privacy-service.ts';
import { StoredFileMissingError } from '../../src/tasks/file-storage.ts';
import { signedInUser } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { finishedTask } from './helpers.ts';

let ta: TestApp;
beforeAll(async () => {
  ta = await buildTestApp({ env: { RETENTION_UPLOAD_DAYS: '30', RETENTION_RESULT_DAYS: '90', RETENTION_SESSION_DAYS: '7' } });
});
afterAll(async () => ta.close());

const DAY = 86_400_000;

describe('the retention sweeper', () => {
  it('deletes uploads after 30 days and results after 90, keeps the task rows, and audits what it deleted', async () => {
    const { user } = await signedInUser(ta.app);
    const now = Date.now();
    const fresh = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 29 * DAY) });
    const oldUpload = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 31 * DAY), text: 'kept for now' });
    const oldResult = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 91 * DAY) });
    const privacy = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox, clock: () => new Date(now) });

    const swept = await privacy.sweepRetention();
    expect(swept).toMatchObject({ uploads: 2, results: 1 });
    // the fresh task keeps everything
    expect((await ta.deps.storage.read(fresh.key)).equals(fresh.bytes)).toBe(true);
    // 31 days: the upload is gone, the text stays
    await expect(ta.deps.storage.read(oldUpload.key)).rejects.toBeInstanceOf(StoredFileMissingError);
    expect(await ta.t.db('tasks').where({ id: oldUpload.id }).first()).toMatchObject({ result_text: 'kept for now', results_deleted_at: null });
    // 91 days: upload and results gone; the row (and what it was charged) stays
    await expect(ta.deps.storage.read(oldResult.resultKey)).rejects.toBeInstanceOf(StoredFileMissingError);
    expect(await ta.t.db('tasks').where({ id: oldResult.id }).first()).toMatchObject({ result_text: null, result_key: null, charged_millicredits: 1500 });

    const [entry] = await ta.t.db('audit_log').where({ action: 'retention.swept' });
    expect(entry.details).toMatchObject({ uploads: 2, results: 1, uploadTaskIds: expect.arrayContaining([oldUpload.id, oldResult.id]), resultTaskIds: [oldResult.id] });
    // a second sweep finds nothing more, and records nothing
    expect(await privacy.sweepRetention()).toMatchObject({ uploads: 0, results: 0, exports: 0, sessions: 0 });
    expect(await ta.t.db('audit_log').where({ action: 'retention.swept' })).toHaveLength(1);
  });

  it('deletes session rows that ended more than RETENTION_SESSION_DAYS ago, and no others', async () => {
    const { user } = await signedInUser(ta.app);
    const before = Number((await ta.t.db('session').count('* as n'))[0]!.n);
    await ta.t.db('session').insert({ sid: 'ended-long-ago', sess: JSON.stringify({ userId: user.id, ip: '198.51.100.7' }), expire: new Date(Date.now() - 8 * DAY) });
    const privacy = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox });
    expect((await privacy.sweepRetention()).sessions).toBe(1);
    expect(Number((await ta.t.db('session').count('* as n'))[0]!.n)).toBe(before);
  });
});
