import { createServer, get, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import type { Response } from 'express';
import { writeSseNow } from '../../src/features/stream/sse.ts';

/** what the socket held right after the write: bytes not yet handed to the kernel, and its cork count */
interface AfterWrite {
  queued: number;
  corked: number;
}

/** a real server whose handler writes one event from inside a promise chain (as a provider's delta arrives) */
async function writeFromMicrotask(write: (res: ServerResponse) => void): Promise<{ after: AfterWrite; body: string }> {
  let after: AfterWrite | undefined;
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    void Promise.resolve().then(() => {
      write(res);
      const socket = res.socket as NonNullable<typeof res.socket>;
      after = { queued: socket.writableLength, corked: socket.writableCorked };
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    const body = await new Promise<string>((resolve, reject) => {
      get({ host: '127.0.0.1', port, path: '/' }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve(text));
      }).on('error', reject);
    });
    return { after: after as AfterWrite, body };
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

describe('writeSseNow: an event written from inside a promise chain', () => {
  it('is handed to the kernel before the microtasks queued after it run (a plain write waits for the next tick)', async () => {
    const now = await writeFromMicrotask((res) => writeSseNow(res as unknown as Response, 'data: first\n\n'));
    expect(now.after).to.deep.equal({ queued: 0, corked: 0 });
    expect(now.body).to.equal('data: first\n\n');
    // the behaviour it works around: node's response corks the socket on a write and uncorks it on the next tick
    const plain = await writeFromMicrotask((res) => res.write('data: first\n\n'));
    expect(plain.after.corked).to.equal(1);
    expect(plain.after.queued).to.be.greaterThan(0);
    expect(plain.body).to.equal('data: first\n\n');
  });

  it('writes nothing once the response ended', async () => {
    const ended = await writeFromMicrotask((res) => {
      res.end('data: last\n\n');
      writeSseNow(res as unknown as Response, 'data: after the end\n\n');
    });
    expect(ended.body).to.equal('data: last\n\n');
  });
});
