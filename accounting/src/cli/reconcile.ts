// `make reconcile FROM= TO=`: prints every difference between chat's stored replies, reservations, usage and the
// ledger (exit 1 if any, 2 on bad usage or when chat cannot be asked). `--json` prints the differences as JSON.
import { parseArgs } from 'node:util';
import { createKeyring, ServiceClient } from '@platform/shared-types';
import { connectPostgres, pgUrlFor } from '@platform/shared-types/stores/postgres';
import { z } from 'zod';
import { chatStoredReplies } from '../features/reconcile/chat-replies.ts';
import { reconcile } from '../features/reconcile/reconcile-service.ts';

const env = z
  .object({
    PG_URL: z.string().regex(/^postgres(ql)?:\/\//),
    PG_DB: z.string().default('accounting'),
    CHAT_URL: z.url().default('http://127.0.0.1:3002'),
    INTERNAL_SECRET: z.string().min(32, 'INTERNAL_SECRET (at least 32 bytes) signs the call to chat'),
  })
  .parse(process.env);
const { values } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' }, json: { type: 'boolean' } } });
const to = values.to ? new Date(values.to) : new Date();
const from = values.from ? new Date(values.from) : new Date(to.getTime() - 86_400_000);
if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from >= to) {
  process.stderr.write('usage: reconcile --from <date> --to <date> [--json] (from before to)\n');
  process.exit(2);
}
const db = connectPostgres(pgUrlFor(env.PG_URL, env.PG_DB), { pool: { min: 0, max: 2 } });
const chat = new ServiceClient({ caller: 'accounting', internalKeyring: createKeyring(env.INTERNAL_SECRET), baseUrls: { chat: env.CHAT_URL } });
try {
  const differences = await reconcile(db, from, to, { replies: chatStoredReplies(chat) });
  if (values.json) process.stdout.write(`${JSON.stringify({ from: from.toISOString(), to: to.toISOString(), differences })}\n`);
  else {
    for (const d of differences) process.stdout.write(`${d.kind}\t${d.userId}\t${d.reservationId ?? '-'}\t${d.messageId ?? '-'}\t${d.problem}\n`);
    process.stdout.write(`reconciled ${from.toISOString()} .. ${to.toISOString()}: ${differences.length} difference(s)\n`);
  }
  process.exitCode = differences.length === 0 ? 0 : 1;
} catch (error) {
  process.stderr.write(`reconcile failed: ${(error as Error).message}\n`);
  process.exitCode = 2;
} finally {
  await db.destroy();
  await chat.close();
}
