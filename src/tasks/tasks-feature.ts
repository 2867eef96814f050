import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createTasksPages, createTasksUploadParser } from './tasks-pages.ts';
import { createTasksRouter } from './tasks-router.ts';
import { createWalletResolver } from '../teams/wallets.ts';

/** Upload and the tasks API (`/api/tasks/*`) and the /tasks pages, on the tasks service. */
export function createTasksFeature(services: Services): Feature {
  const { tasks, pricing, config, logger, ledger, db } = services;
  const maxUploadBytes = config.tasks.maxUploadBytes;
  return {
    raw: createTasksUploadParser(maxUploadBytes),
    api: createTasksRouter({
      service: tasks,
      ledger,
      db,
      holdTimeoutMs: config.tasks.holdTimeoutMs,
      topUpUrl: `${config.appUrl}/pricing`,
      maxUploadBytes,
      logger,
      maxEventStreamsPerUser: config.tasks.maxEventStreamsPerUser,
      spender: createWalletResolver(services.teams),
    }),
    pages: createTasksPages({
      service: tasks,
      pricing,
      maxUploadBytes,
      spender: createWalletResolver(services.teams),
      wallets: async (userId) => {
        const [teams, current] = await Promise.all([services.teams.listFor(userId), services.teams.defaultWallet(userId)]);
        return { teams: teams.map((t) => ({ id: t.id, name: t.name })), current: current ? `team:${current}` : 'personal' };
      },
      poolAvailable: (teamId) => ledger.getAvailable(teamId),
      spend: services.spend,
    }),
  };
}
