// A stand-in OpenAI-compatible server (a third party) that streams back the last user message from its first
// "Plain **bold**" on, in small chunks, with exact usage: the browser tests feed hostile model output through it.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** model output that must render as text: raw HTML, an image with onerror, javascript: links */
export const HOSTILE = [
  'Plain **bold** text.',
  '<script>window.__pwned = "script"</script>',
  '<img src="x" onerror="window.__pwned = \'img\'">',
  '[click me](javascript:window.__pwned=1) and [fine](https://example.com/)',
  '<a href="javascript:alert(1)">raw link</a>',
].join('\n\n');

export interface EchoModel {
  url: string;
  server: Server;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `firstChunkMs` before the first chunk (a time to first token to see), `chunkMs` between chunks of 16 characters. */
export async function startEchoModel(options: { firstChunkMs?: number; chunkMs?: number } = {}): Promise<EchoModel> {
  const { firstChunkMs = 0, chunkMs = 20 } = options;
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => {
      raw += chunk.toString('utf8');
    });
    req.on('end', async () => {
      const body = JSON.parse(raw) as { messages: Array<{ role: string; content: string }> };
      const last = body.messages.filter((m) => m.role === 'user').at(-1)?.content ?? '';
      const reply = last.replace(/^[\s\S]*?(?=Plain \*\*bold\*\*)/, ''); // the message alone, whatever chat put before it
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const send = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
      if (firstChunkMs > 0) await pause(firstChunkMs);
      for (let i = 0; i < reply.length; i += 16) {
        send({ choices: [{ delta: { content: reply.slice(i, i + 16) }, finish_reason: null }] });
        await pause(chunkMs);
      }
      send({ choices: [{ delta: {}, finish_reason: 'stop' }] });
      const promptChars = body.messages.reduce((sum, m) => sum + m.content.length, 0);
      send({ choices: [], usage: { prompt_tokens: Math.ceil(promptChars / 4), completion_tokens: Math.ceil(reply.length / 4) } });
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
