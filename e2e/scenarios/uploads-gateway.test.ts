// Upload admission through the real gateway: with two uploads of a user in flight, a third is answered 429
// while most of its body was never sent, and the held uploads still complete.
import { connect, type Socket } from 'node:net';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { createUser, type Session } from '../support/client.ts';
import { type Platform, startPlatform } from '../support/platform.ts';

const BOUNDARY = 'e2e-upload-boundary';
const body = Buffer.concat([
  Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="notes.txt"\r\nContent-Type: text/plain\r\n\r\n`),
  Buffer.alloc(2_000_000, 'n'),
  Buffer.from(`\r\n--${BOUNDARY}--\r\n`),
]);

/** Opens a raw upload through the gateway and sends only `first` bytes of its body; resolves the status line's code. */
function openUpload(gatewayUrl: string, token: string, first: number): { socket: Socket; status: Promise<number> } {
  const url = new URL(gatewayUrl);
  const socket = connect(Number(url.port), url.hostname);
  socket.on('error', () => undefined);
  socket.write(
    [
      'POST /api/chat/files HTTP/1.1',
      `Host: ${url.host}`,
      `Authorization: Bearer ${token}`,
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}`,
      `Content-Length: ${body.length}`,
      '',
      '',
    ].join('\r\n'),
  );
  socket.write(body.subarray(0, first));
  const status = new Promise<number>((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (match && text.includes('\r\n\r\n')) resolve(Number(match[1]));
    });
    socket.on('close', () => reject(new Error(`closed without an answer: ${text.slice(0, 200)}`)));
  });
  return { socket, status };
}

describe('upload admission through the gateway', () => {
  let platform: Platform;
  let user: Session;
  let redis: Redis;

  before(async function () {
    this.timeout(180_000);
    platform = await startPlatform();
    user = await createUser(platform, 'enduser', 'uploader');
    redis = new Redis(platform.env.REDIS_URL as string);
  });
  after(async () => {
    redis?.disconnect();
    await platform?.stop();
  });

  it('a third concurrent upload is refused with 429 before its body is read; the two running ones complete', async () => {
    const held = [openUpload(platform.gatewayUrl, user.accessToken, 64 * 1024), openUpload(platform.gatewayUrl, user.accessToken, 64 * 1024)];
    const slots = `chat:files:uploading:${user.userId}`;
    const deadline = Date.now() + 20_000;
    while ((await redis.zcard(slots)) < 2) {
      if (Date.now() > deadline) throw new Error('the two uploads were not admitted');
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const third = openUpload(platform.gatewayUrl, user.accessToken, 64 * 1024);
    expect(await third.status).to.equal(429);
    third.socket.destroy();
    for (const upload of held) upload.socket.write(body.subarray(64 * 1024));
    expect(await Promise.all(held.map((upload) => upload.status))).to.deep.equal([201, 201]);
    for (const upload of held) upload.socket.destroy();
  });
});
