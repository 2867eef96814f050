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

  it('after the sweep the task says its results and file were deleted: 410 problem+json for them, 200 for the task, and the page says so', async () => {
    const { user, agent } = await signedInUser(ta.app);
    const now = Date.now();
    const fresh = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 10 * DAY), text: 'still here' });
    const oldUpload = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 31 * DAY), text: 'text outlives its file', fileName: 'receipt.png' });
    const oldResult = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 91 * DAY), text: 'gone', fileName: 'letter.png' });
    const oldFailed = await finishedTask(ta.deps, user.id, { createdAt: new Date(now - 31 * DAY) });
    await ta.t.db('tasks').where({ id: oldFailed.id }).update({ status: 'failed', result_text: null, result_key: null, charged_millicredits: 0, error_code: 'ocr_failed', error_detail: 'The OCR engine stopped.' });
    const sweptAt = new Date(now);
    const privacy = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox, clock: () => sweptAt });
    await privacy.sweepRetention();

    // inside both periods: text and file as before
    const text = await agent.get(`/api/tasks/${fresh.id}/result`).expect(200);
    expect(text.text).toBe('still here');
    await agent.get(`/api/tasks/${fresh.id}/download`).expect(200);
    const kept = (await agent.get(`/api/tasks/${fresh.id}`).expect(200)).body.task;
    expect(kept).toMatchObject({ resultDeletedAt: null, fileDeletedAt: null });

    // past 90 days: every form of the result is 410 result-expired naming the 90 days, and so is the file (30 days)
    for (const format of ['txt', 'json', 'pdf']) {
      const res = await agent.get(`/api/tasks/${oldResult.id}/result?format=${format}`);
      expect(res.status, format).toBe(410);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.body).toMatchObject({ type: 'https://tally.dev/problems/result-expired', title: 'Result expired', status: 410, code: 'result_expired', retentionDays: 90, deletedAt: sweptAt.toISOString() });
      expect(res.body.detail).toMatch(/deleted on .+ under the retention policy: results are kept for 90 days/);
    }
    const file = await agent.get(`/api/tasks/${oldResult.id}/download`).expect(410);
    expect(file.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(file.body).toMatchObject({ type: 'https://tally.dev/problems/file-expired', code: 'file_expired', retentionDays: 30, deletedAt: sweptAt.toISOString() });
    expect(file.body.detail).toMatch(/uploads are kept for 30 days/);
    // the task itself still answers, with what it was charged and when its parts went
    const gone = await agent.get(`/api/tasks/${oldResult.id}`).expect(200);
    expect(gone.body.task).toMatchObject({ status: 'completed', pages: 1, chargedCredits: 1.5, resultDeletedAt: sweptAt.toISOString(), fileDeletedAt: sweptAt.toISOString() });
    expect(gone.body.pageStats).toEqual([]);
    const listed = (await agent.get('/api/tasks').expect(200)).body.tasks.find((t: { id: string }) => t.id === oldResult.id);
    expect(listed).toMatchObject({ resultDeletedAt: sweptAt.toISOString() });

    // past 30 days only: the text is still there, the file is 410
    expect((await agent.get(`/api/tasks/${oldUpload.id}/result`).expect(200)).text).toBe('text outlives its file');
    await agent.get(`/api/tasks/${oldUpload.id}/download`).expect(410);
    expect((await agent.get(`/api/tasks/${oldUpload.id}`).expect(200)).body.task).toMatchObject({ resultDeletedAt: null, fileDeletedAt: sweptAt.toISOString() });

    // a failed task whose upload was deleted cannot be retried: 410, and nothing is held
    const retry = await agent.post(`/api/tasks/${oldFailed.id}/retry`).expect(410);
    expect(retry.body).toMatchObject({ code: 'file_expired' });
    expect(retry.body.detail).toMatch(/Upload it again/);
    expect(await ta.t.db('holds').where('id', 'like', `task:${oldFailed.id}:retry:%`)).toEqual([]);
    expect(await ta.t.db('tasks').where({ id: oldFailed.id }).first()).toMatchObject({ status: 'failed' });

    // the page says what was deleted and when, and offers no download of it
    const date = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' }).format(sweptAt);
    const page = (await agent.get(`/tasks/${oldResult.id}`).set('Accept', 'text/html').expect(200)).text;
    expect(page).toContain(`The text of this file was deleted on <time datetime="${sweptAt.toISOString()}">${date}</time> under our retention policy (kept 90 days).`);
    expect(page).toContain(`The original file was deleted on <time datetime="${sweptAt.toISOString()}">${date}</time> under our retention policy (kept 30 days).`);
    expect(page).not.toContain('No text was found');
    expect(page).not.toMatch(/Download (original|text|words|searchable)/);
    const partly = (await agent.get(`/tasks/${oldUpload.id}`).set('Accept', 'text/html').expect(200)).text;
    expect(partly).toContain('text outlives its file');
    expect(partly).toContain('Download text (.txt)');
    expect(partly).not.toContain('Download original');
    const failedPage = (await agent.get(`/tasks/${oldFailed.id}`).set('Accept', 'text/html').expect(200)).text;
    expect(failedPage).toContain('so it cannot be tried again: upload it again to read it.');
    expect(failedPage).not.toContain('Try again');
    const freshPage = (await agent.get(`/tasks/${fresh.id}`).set('Accept', 'text/html').expect(200)).text;
    expect(freshPage).toContain('still here');
    expect(freshPage).toContain('Download original');
    expect(freshPage).not.toContain('under our retention policy');
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
