import { z } from 'zod';
import { DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the privacy JSON the API returns (privacy-feature.ts), for the OpenAPI document. */

export const ExportJson = z.object({
  id: z.string(),
  status: z.string(),
  sizeBytes: z.number().int().nullable(),
  createdAt: DateTime,
  readyAt: DateTime.nullable(),
  expiresAt: DateTime.nullable(),
  downloadedAt: DateTime.nullable(),
  links: z.object({ self: z.string(), download: z.string().nullable() }),
});
export const DeletionJson = z.object({ status: z.string(), requestedAt: DateTime, scheduledFor: DateTime, completedAt: DateTime.nullable() }).nullable();

export const ExportResponse = z.object({ export: ExportJson });
export const ExportsResponse = z.object({ exports: z.array(ExportJson) });
export const DeletionResponse = z.object({ deletion: DeletionJson });
export const ErasureResponse = z.object({ erased: z.literal(true), pseudonym: z.string(), deletion: DeletionJson });
