// `make reconcile FROM= TO=`: prints every difference between reservations, usage and the ledger (exit 1 if any).
import { parseArgs } from 'node:util';
import { connectPostgres, pgUrlFor } from '@platform/shared-types/stores';
import { z } from 'zod';
import { reconcile } from '../features/reconcile/reconcile-service.ts';

const env = z.object({ PG_URL: z.string().regex(/^postgres(ql)?:\/\//), PG_DB: z.string().default('accounting') }).parse(process.env);
const { values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' } } });
const to = values.to ? new Date(values.to) : new Date();
const from = values.from ? new Date(values.from) : new Date(to.getTime() - 86_400_000);
if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) {
  process.stderr.write('usage: reconcile --from <date> --to <date> (from before to)\n');
  process.exit(2);
}
const db = connectPostgres(pgUrlFor(env.PG_URL, env.PG_DB), { pool: { min: 0, max: 2 } });
try {
  const differences = await reconcile(db, from, to);
  for (const d of differences) process.stdout.write(`${d.kind}\t${d.userId}\t${d.reservationId ?? '-'}\t${d.problem}\n`);
  process.stdout.write(`reconciled ${from.toISOString()} .. ${to.toISOString()}: ${differences.length} difference(s)\n`);
  process.exitCode = differences.length === 0 ? 0 : 1;
} finally {
  await db.destroy();
}
