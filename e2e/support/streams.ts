// A chat stream opened through a gateway and read in the background, for the tests that cut, kill or time one.
import { connectPostgres, pgUrlFor } from '@platform/shared-types/stores';
import { expect } from 'chai';
import { api, type Session, type SseEvent, sse } from './client.ts';
import type { Platform } from './platform.ts';

export interface OpenStream {
  user: Session;
  sessionId: string;
  reservationId: string;
  /** every event so far (the reader keeps appending until the stream ends) */
  events: SseEvent[];
  /** settles when the stream has ended (or broke) */
  done: Promise<void>;
  /** from the request to the end of the stream */
  elapsedMs(): number;
}

/** Opens a session and its stream; answers once the first delta has arrived. */
export async function startStream(gw: string, user: Session, options: { modelId?: string; message?: string } = {}): Promise<OpenStream> {
  const session = await api<{ session: { id: string } }>(gw, 'POST', '/api/chat/sessions', {
    token: user.accessToken,
    body: { modelId: options.modelId ?? 'local-dev' },
  });
  expect(session.status, JSON.stringify(session.body)).to.equal(201);
  const events: SseEvent[] = [];
  const startedAt = Date.now();
  let endedAt = 0;
  let firstDelta: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    firstDelta = resolve;
  });
  const done = (async () => {
    for await (const event of sse(gw, `/api/chat/sessions/${session.body.session.id}/stream`, {
      token: user.accessToken,
      body: { message: options.message ?? 'a long story please' },
    })) {
      events.push(event);
      if (event.event === 'delta') firstDelta();
    }
    endedAt = Date.now();
  })().catch(() => undefined);
  await started;
  const reservationId = String(events.find((event) => event.event === 'session')?.data.reservationId ?? '');
  return { user, sessionId: session.body.session.id, reservationId, events, done, elapsedMs: () => endedAt - startedAt };
}

/** The reservation row as accounting keeps it (read-only, the run's own database). */
export async function reservationRow(platform: Platform, reservationId: string): Promise<{ status: string; reserved: number; charged: number }> {
  const db = connectPostgres(pgUrlFor(platform.env.PG_URL as string, platform.env.ACCOUNTING_PG_DB as string), { pool: { min: 0, max: 1 } });
  try {
    const row = await db('reservations').where({ id: reservationId }).first('status', 'reserved', 'charged');
    if (!row) throw new Error(`no reservation ${reservationId}`);
    return { status: String(row.status), reserved: Number(row.reserved), charged: Number(row.charged) };
  } finally {
    await db.destroy();
  }
}
