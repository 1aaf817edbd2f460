import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import type { Actor } from '@platform/shared-types';
import { storeUrls, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Types } from 'mongoose';
import { launchPart, type RunningPart } from '../../../scripts/platform.ts';
import { FilesDal } from '../../src/features/files/files-dal.ts';
import { FAST, type Platform, startPlatform, waitFor } from '../support/harness.ts';

const BOUNDARY = 'upload-test-boundary-7c1f';
const partHead = (name: string) =>
  Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: text/plain\r\n\r\n`);
const partTail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
/** a multipart body holding one text file of `size` bytes */
const multipart = (name: string, size: number) => Buffer.concat([partHead(name), Buffer.alloc(size, 'a'), partTail]);

interface Answer {
  status: number;
  headers: string;
  body: Record<string, unknown>;
}

/**
 * A raw HTTP/1.1 upload over its own socket: the test decides how much of the body goes out and when, and can
 * read the answer while the rest is still unsent.
 */
class RawUpload {
  readonly socket: Socket;
  readonly answer: Promise<Answer>;
  closed = false;

  constructor(baseUrl: string, headers: Record<string, string>, framing: { contentLength: number } | 'chunked') {
    const url = new URL(baseUrl);
    this.socket = connect(Number(url.port), url.hostname);
    this.socket.on('error', () => undefined);
    const lines = [`POST /api/chat/files HTTP/1.1`, `Host: ${url.host}`, `Content-Type: multipart/form-data; boundary=${BOUNDARY}`];
    lines.push(framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${framing.contentLength}`);
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    this.socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    const received: Buffer[] = [];
    this.answer = new Promise((resolve, reject) => {
      const finish = () => {
        this.closed = true;
        const text = Buffer.concat(received).toString('utf8');
        const split = text.indexOf('\r\n\r\n');
        if (split < 0) return reject(new Error(`no answer (${text.length} bytes)`));
        const head = text.slice(0, split);
        let raw = text.slice(split + 4);
        if (/transfer-encoding: chunked/i.test(head)) raw = raw.replace(/^[0-9a-f]+\r\n/i, '').replace(/\r\n0\r\n\r\n$/, '');
        const status = Number(head.split(' ')[1]);
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(raw.trim()) as Record<string, unknown>;
        } catch {
          body = { raw };
        }
        resolve({ status, headers: head, body });
      };
      this.socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        // a complete problem answer (Connection: close) or a 201 with a JSON body
        const text = Buffer.concat(received).toString('utf8');
        const split = text.indexOf('\r\n\r\n');
        const length = /content-length: (\d+)/i.exec(text.slice(0, split))?.[1];
        if (split >= 0 && length !== undefined && Buffer.byteLength(text.slice(split + 4)) >= Number(length)) finish();
      });
      this.socket.on('close', () => {
        if (!this.closed) finish();
      });
    });
  }

  send(data: Buffer, chunked = false): Promise<void> {
    const framed = chunked ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]) : data;
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(framed, () => resolve());
    });
  }

  endChunked(): Promise<void> {
    return new Promise((resolve) => this.socket.write('0\r\n\r\n', () => resolve()));
  }
}

describe('uploads stream to storage: admission before the body, bounded memory, nothing half written (real MongoDB-compatible server, Redis)', () => {
  let platform: Platform;
  const chatUrl = () => platform.instances[0]?.url as string;
  // raw sockets bypass the test kit's fetch signer: sign as the gateway does, bound to the upload request (DESIGN 3)
  const uploadHeaders = (actor: Actor) => ({
    ...platform.auth.identityHeaders(actor, undefined, { method: 'POST', path: '/api/chat/files', service: 'chat' }),
    authorization: `Bearer ${platform.auth.token(actor)}`,
  });
  const BYTES_PER_DAY = 3_000_000;
  const REFUSED_MAX = 8;

  before(async () => {
    platform = await startPlatform({
      env: {
        FILE_MAX_BYTES: '6000000',
        FILE_UPLOADS_PER_DAY: '50',
        FILE_BYTES_PER_DAY: String(BYTES_PER_DAY),
        FILE_MAX_CONCURRENT_UPLOADS: '2',
        FILE_UPLOAD_IDLE_MS: '1500',
        FILE_REFUSED_MAX: String(REFUSED_MAX),
      },
    });
  });
  after(async () => {
    await platform.stop();
  });

  const mongo = () => platform.instances[0]?.stores.mongo;
  /** chunk documents whose file document does not exist (what a half-written upload would leave) */
  async function orphanChunks(): Promise<number> {
    const db = mongo();
    if (!db) throw new Error('no store');
    const fileIds = (
      await db
        .collection('files')
        .find({}, { projection: { _id: 1 } })
        .toArray()
    ).map((doc) => String(doc._id));
    const chunkFileIds = await db.collection('file_chunks').distinct('fileId');
    return chunkFileIds.filter((id) => !fileIds.includes(String(id))).length;
  }
  const slotsInUse = (actor: Actor) => platform.instances[0]?.stores.redis.zcard(`${platform.redisPrefix}files:uploading:${actor.userId}`) ?? 0;
  const quotaOf = async (actor: Actor) =>
    (await (await fetch(`${chatUrl()}/api/chat/files/quota`, { headers: platform.headers(actor) })).json()) as Record<string, number>;

  it('uploads beyond the concurrency cap are refused with 429 before their bodies are read', async () => {
    const user = testActor('enduser');
    const size = 1_000_000;
    const body = multipart('held.txt', size);
    const held = [0, 1].map(() => new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: body.length }));
    for (const upload of held) await upload.send(body.subarray(0, 64 * 1024));
    await waitFor(async () => (await slotsInUse(user)) === 2, 'both held uploads admitted');

    const extra = Array.from({ length: 5 }, () => new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: body.length }));
    for (const upload of extra) await upload.send(body.subarray(0, 64 * 1024));
    // answered while 94% of each body was never sent
    for (const upload of extra) {
      const answer = await upload.answer;
      expect(answer.status, JSON.stringify(answer.body)).to.equal(429);
      expect(answer.body.code).to.equal('RATE_LIMITED');
      expect(answer.headers).to.match(/connection: close/i);
      expect(answer.headers).to.match(/retry-after: \d+/i);
    }
    for (const upload of held) {
      expect(upload.closed).to.equal(false);
      await upload.send(body.subarray(64 * 1024));
    }
    for (const upload of held) expect((await upload.answer).status).to.equal(201);
    expect(await slotsInUse(user)).to.equal(0);
    expect(await quotaOf(user)).to.include({ used: 2, bytesUsed: 2 * size });
  });

  it('an upload larger than the remaining byte quota is refused (429 QUOTA_EXCEEDED) and nothing of it stays stored', async () => {
    const user = testActor('enduser');
    const first = multipart('first.txt', 2_000_000);
    const stored = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: first.length });
    await stored.send(first);
    expect((await stored.answer).status).to.equal(201);

    // declared: refused from the headers, before the body
    const declared = multipart('declared.txt', 1_500_000);
    const early = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: declared.length });
    await early.send(declared.subarray(0, 1024));
    const earlyAnswer = await early.answer;
    expect(earlyAnswer.status).to.equal(429);
    expect(earlyAnswer.body).to.include({ code: 'QUOTA_EXCEEDED' });

    // chunked (no length): streamed, and cut as soon as it passes what is left today
    const streamed = new RawUpload(chatUrl(), uploadHeaders(user), 'chunked');
    await streamed.send(partHead('streamed.txt'), true);
    const piece = Buffer.alloc(256 * 1024, 'b');
    let sent = 0;
    while (!streamed.closed && sent < 1_500_000) {
      await streamed.send(piece, true);
      sent += piece.length;
    }
    if (!streamed.closed) {
      await streamed.send(partTail, true);
      await streamed.endChunked();
    }
    const cut = await streamed.answer;
    expect(cut.status, JSON.stringify(cut.body)).to.equal(429);
    expect(cut.body).to.include({ code: 'QUOTA_EXCEEDED' });

    expect(await quotaOf(user)).to.include({ used: 1, bytesUsed: 2_000_000, bytesRemaining: BYTES_PER_DAY - 2_000_000 });
    await waitFor(async () => (await orphanChunks()) === 0, 'no chunk of the refused uploads left');
  });

  it('a slow upload cut mid-body leaves no stored file, and one that stalls is answered and cleaned up', async () => {
    const user = testActor('enduser');
    const body = multipart('slow.txt', 2_000_000);
    const before = await orphanChunks();
    const cutOff = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: body.length });
    await cutOff.send(body.subarray(0, 800_000));
    // chunks are written while the body arrives (streamed, not buffered whole)
    await waitFor(async () => (await orphanChunks()) > before, 'chunks written during the upload');
    cutOff.socket.destroy();
    await waitFor(async () => (await orphanChunks()) === 0 && (await slotsInUse(user)) === 0, 'partial upload discarded');

    const stalled = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: body.length });
    await stalled.send(body.subarray(0, 600_000));
    const answer = await stalled.answer;
    expect(answer.status).to.equal(400);
    expect(answer.body.detail).to.match(/stalled/);
    await waitFor(async () => (await orphanChunks()) === 0 && (await slotsInUse(user)) === 0, 'stalled upload discarded');
    expect(await quotaOf(user)).to.include({ used: 0, bytesUsed: 0 });
  });

  it('chunks of an upload cut by a crash (no file document) are swept once the upload timeout has passed; finished files stay', async () => {
    const db = mongo();
    if (!db) throw new Error('no store');
    const dal = new FilesDal(db);
    // what an instance that died mid-upload leaves: chunks of a file id from an hour ago, no file document
    const crashed = Types.ObjectId.createFromTime(Math.floor(Date.now() / 1000) - 3600);
    await dal.writeChunk(crashed, 0, Buffer.alloc(1000, 'x'));
    await dal.writeChunk(crashed, 1, Buffer.alloc(1000, 'y'));
    // one still running (begun just now) must not be touched
    const running = dal.newFileId();
    await dal.writeChunk(running, 0, Buffer.alloc(1000, 'z'));
    const user = testActor('enduser');
    const kept = multipart('kept.txt', 300_000);
    const upload = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: kept.length });
    await upload.send(kept);
    const { file } = (await upload.answer).body as { file: { id: string } };

    expect(await platform.instances[0]?.stores.runtime.files.sweepUnfinished()).to.equal(1);
    expect(await dal.chunkCount(crashed)).to.equal(0);
    expect(await dal.chunkCount(running)).to.equal(1);
    const download = await fetch(`${chatUrl()}/api/chat/files/${file.id}`, { headers: platform.headers(user) });
    expect((await download.arrayBuffer()).byteLength).to.equal(300_000);
    await dal.discardChunks(running);
  });

  it('counts refused uploads: past the limit every upload is refused (429) before its body is read', async () => {
    const user = testActor('enduser');
    for (let i = 0; i < REFUSED_MAX; i++) {
      const junk = Buffer.concat([partHead(`junk${i}.bin`), Buffer.from([0x4d, 0x5a, 0x90, 0, 3, 0, 0xff, 0xfe, 1, 2, 3, 4, 5]), partTail]);
      const upload = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: junk.length });
      await upload.send(junk);
      expect((await upload.answer).status).to.equal(415);
    }
    const valid = multipart('fine.txt', 100);
    const upload = new RawUpload(chatUrl(), uploadHeaders(user), { contentLength: valid.length });
    await upload.send(valid.subarray(0, 10));
    const answer = await upload.answer;
    expect(answer.status).to.equal(429);
    expect(answer.body.code).to.equal('RATE_LIMITED');
    expect(await quotaOf(user)).to.include({ used: 0 });
    // another user is not affected
    const other = testActor('enduser');
    const theirs = new RawUpload(chatUrl(), uploadHeaders(other), { contentLength: valid.length });
    await theirs.send(valid);
    expect((await theirs.answer).status).to.equal(201);
  });

  it('memory: 20 parallel 5 MB uploads do not grow a separate chat process by a multiple of what they carry (figures logged)', async function () {
    this.timeout(120_000);
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...platform.auth.secrets,
      ...FAST,
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      PORT: '0',
      HOST: '127.0.0.1',
      MONGO_URL: storeUrls().MONGO_URL,
      MONGO_DB: `${platform.mongoDb}_rss`,
      REDIS_URL: storeUrls().REDIS_URL,
      REDIS_PREFIX: `${platform.redisPrefix}rss:`,
      ACCOUNTING_URL: platform.accounting.url,
      MONITORING_URL: platform.monitoring.url,
      FILE_MAX_BYTES: '6000000',
      FILE_UPLOADS_PER_DAY: '10',
    };
    const part: RunningPart = launchPart('chat', env, () => undefined);
    try {
      const url = await part.url;
      const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${part.child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
      // one warm-up upload, so code paths and connections exist before the baseline
      const warm = multipart('warm.txt', 300_000);
      const warmUp = new RawUpload(url, uploadHeaders(testActor('enduser')), { contentLength: warm.length });
      await warmUp.send(warm);
      expect((await warmUp.answer).status).to.equal(201);
      const baseline = rss();
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, rss());
      }, 10);
      const size = 5 * 1024 * 1024;
      const body = multipart('big.txt', size);
      const uploads = Array.from({ length: 20 }, () => new RawUpload(url, uploadHeaders(testActor('enduser')), { contentLength: body.length }));
      await Promise.all(uploads.map((upload) => upload.send(body)));
      const answers = await Promise.all(uploads.map((upload) => upload.answer));
      clearInterval(sampler);
      peak = Math.max(peak, rss());
      expect(answers.map((a) => a.status)).to.deep.equal(Array(20).fill(201));
      const growth = peak - baseline;
      console.log(
        `      chat RSS: baseline ${(baseline / 1e6).toFixed(1)} MB, peak ${(peak / 1e6).toFixed(1)} MB, growth ${(growth / 1e6).toFixed(1)} MB for ${((20 * size) / 1e6).toFixed(0)} MB uploaded`,
      );
      // a bound tied to the payload, not an absolute figure: streamed, the growth is garbage awaiting collection
      // (measured ~0.9x the payload here); holding whole bodies, as before, grew chat by ~4.3x the payload
      expect(growth).to.be.lessThan(2 * 20 * size);
    } finally {
      await part.stop();
      await platform.instances[0]?.stores.mongo.useDb(env.MONGO_DB as string).dropDatabase();
    }
  });
});
