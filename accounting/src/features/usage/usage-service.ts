import { ApiError } from '@platform/shared-types';
import { withRetry } from '../../db.ts';
import type { AccountsDal } from '../accounts/accounts-dal.ts';
import type { PricesService } from '../prices/prices-service.ts';
import type { UsageDal, UsageExportRow, UsageInput } from './usage-dal.ts';

const DAY_MS = 86_400_000;
const EXPORT_COLUMNS = ['day', 'user_id', 'username', 'model_id', 'requests', 'input_tokens', 'output_tokens', 'credits', 'shortfall'] as const;

/** One CSV field (RFC 4180 quoting); a text starting like a formula is prefixed so spreadsheets show it as text. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function toCsv(rows: UsageExportRow[]): string {
  const header = [...EXPORT_COLUMNS.slice(0, 8), 'shortfall_credits'].join(',');
  return `${[header, ...rows.map((row) => EXPORT_COLUMNS.map((column) => csvField(String(row[column]))).join(','))].join('\r\n')}\r\n`;
}

/** [from, to) with the defaults and bounds of usage reports (the last 30 days; at most 366 days). */
export function usageRange(query: { from?: Date; to?: Date }): { from: Date; to: Date } {
  const to = query.to ?? new Date();
  const from = query.from ?? new Date(to.getTime() - 30 * DAY_MS);
  if (from >= to || to.getTime() - from.getTime() > 366 * DAY_MS) {
    throw new ApiError('VALIDATION_FAILED', 'from must be before to, at most 366 days apart', { errors: [{ path: 'query.from', message: 'bad range' }] });
  }
  return { from, to };
}

/** Usage records, and reports over a date range (the caller has authorized the reader on the owner). */
export function usageService(deps: { usage: UsageDal; accounts: Pick<AccountsDal, 'findAccount'>; prices: Pick<PricesService, 'find'> }) {
  const { usage, accounts, prices } = deps;
  async function knownOwner(ownerId: string): Promise<void> {
    if (!(await accounts.findAccount(ownerId))) throw new ApiError('NOT_FOUND', 'Unknown user');
  }
  return {
    /** Usage that was not reserved (a reservation's usage is recorded once); NOT_FOUND for a model without a price. */
    async record(input: UsageInput): Promise<{ usageId: string; recorded: boolean }> {
      await prices.find(input.modelId);
      const { id, created } = await withRetry(() => usage.recordUsage(input));
      return { usageId: id, recorded: created };
    },

    /** Usage of one user by UTC day and by model. */
    async stats(ownerId: string, range: { from?: Date; to?: Date }) {
      const { from, to } = usageRange(range);
      await knownOwner(ownerId);
      return usage.usageStats(ownerId, from, to);
    },
    /** CSV per UTC day, user and model: of one user, or of everyone without `ownerId`. */
    async exportCsv(range: { from?: Date; to?: Date }, ownerId?: string): Promise<{ csv: string; filename: string }> {
      const { from, to } = usageRange(range);
      if (ownerId) await knownOwner(ownerId);
      const rows = await usage.usageExport(from, to, ownerId);
      return { csv: toCsv(rows), filename: `usage-${from.toISOString().slice(0, 10)}-${to.toISOString().slice(0, 10)}.csv` };
    },
  };
}

export type UsageService = ReturnType<typeof usageService>;
