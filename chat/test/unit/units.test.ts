import { loadModelCatalog } from '@platform/shared-types';
import { testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { Types } from 'mongoose';
import { detectType, safeFileName } from '../../src/features/files/file-types.ts';
import type { MessageDoc } from '../../src/features/sessions/sessions-dal.ts';
import { titleFrom } from '../../src/features/sessions/sessions-service.ts';
import { buildTurns } from '../../src/features/stream/prompt.ts';
import { ModelRegistry } from '../../src/llm-catalog/model-registry.ts';
import { LocalProvider } from '../../src/providers/local-provider.ts';
import { retryTransient } from '../../src/store-retry.ts';
import { waitFor } from '../support/harness.ts';

const message = (role: MessageDoc['role'], content: string): MessageDoc => ({
  _id: new Types.ObjectId(),
  sessionId: new Types.ObjectId(),
  userId: 'u',
  role,
  content,
  status: 'complete',
  createdAt: new Date(),
});

describe('chat units', () => {
  it('buildTurns keeps the newest history that fits, skips supervisor notes, merges same-role turns, starts with the user', () => {
    const history = [message('user', 'a'.repeat(400)), message('assistant', 'b'.repeat(40)), message('supervisor', 'note'), message('user', 'c'.repeat(40))];
    const turns = buildTurns(history, 'new question', 40);
    // 'a' (100 tokens) does not fit; the assistant turn would start the list, so it is dropped
    expect(turns).to.deep.equal([{ role: 'user', content: `${'c'.repeat(40)}\n\nnew question` }]);
    const all = buildTurns(history, 'q', 1000);
    expect(all.map((t) => t.role)).to.deep.equal(['user', 'assistant', 'user']);
    expect(() => buildTurns([], 'x'.repeat(100), 10)).to.throw(/context/);
  });

  it('the model registry applies public / role / user access and hides unconfigured providers', () => {
    const registry = new ModelRegistry(loadModelCatalog(), new Set(['local', 'bedrock']));
    const user = testActor('enduser');
    expect(registry.listFor(user).map((m) => m.id))
      .to.include('claude-3-5-haiku')
      .and.not.include('claude-3-7-sonnet')
      .and.not.include('openai-compatible');
    expect(registry.listFor(testActor('supervisor')).map((m) => m.id)).to.include('claude-3-7-sonnet');
    expect(() => registry.require(user, 'claude-3-7-sonnet')).to.throw(/may not use/);
    expect(() => registry.require(user, 'openai-compatible')).to.throw(/Unknown model/);
  });

  it('a refresh after a change never answers with a reload that began before it (an in-flight reload is followed by a fresh one)', async () => {
    const [local] = loadModelCatalog().filter((m) => m.provider === 'local') as [ReturnType<typeof loadModelCatalog>[number]];
    const user = testActor('enduser');
    let version = '1';
    let models = [{ ...local, access: {} }];
    let release: () => void = () => undefined;
    let gate: Promise<void> | undefined;
    let loadStarted: () => void = () => undefined;
    const source = {
      ttlMs: 60_000,
      version: async () => version,
      load: async () => {
        const seen = models; // what the store holds when this read starts
        loadStarted();
        await gate;
        return { models: seen, disabled: [] };
      },
    };
    const registry = await ModelRegistry.fromSource(new Set(['local']), source);
    expect(registry.listFor(user)).to.have.length(0);
    // a reload starts (the background refresh, another request) and is slow to read the store
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    version = '2';
    const started = new Promise<void>((resolve) => {
      loadStarted = resolve;
    });
    const early = registry.refresh();
    await started;
    // meanwhile an admin opens the model to the user (store write, then version bump)
    models = [{ ...local, access: { users: [user.userId] } }];
    version = '3';
    const late = registry.refresh();
    release();
    await Promise.all([early, late]);
    expect(registry.listFor(user).map((m) => m.id)).to.deep.equal([local.id]);
  });

  it('a stream start waits for a reload only when the version moved, not for one that is only past the TTL', async () => {
    const [local] = loadModelCatalog().filter((m) => m.provider === 'local') as [ReturnType<typeof loadModelCatalog>[number]];
    const user = testActor('enduser');
    let version = '1';
    let models = [{ ...local, access: { public: true } }];
    let loads = 0;
    let gate: Promise<void> = Promise.resolve();
    let release: () => void = () => undefined;
    const source = {
      ttlMs: 0, // every snapshot is past its TTL
      version: async () => version,
      load: async () => {
        loads++;
        const seen = models;
        await gate;
        return { models: seen, disabled: [] };
      },
    };
    const registry = await ModelRegistry.fromSource(new Set(['local']), source);
    gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // only the TTL passed: answers with the snapshot while the reload runs (held at the gate: awaiting it would hang)
    await registry.refreshAccess();
    await waitFor(() => loads === 2, 'the reload in the background');
    expect(registry.listFor(user).map((m) => m.id)).to.deep.equal([local.id]);
    release();
    // the version moved (an admin closed the model): waited for
    models = [{ ...local, access: { public: false } }];
    version = '2';
    await registry.refreshAccess();
    expect(registry.listFor(user)).to.have.length(0);
  });

  it('the local model is deterministic, honours the output limit and reports exact usage', async () => {
    const provider = new LocalProvider({ tokens: 8, tokenDelayMs: 0 });
    const run = async (maxOutputTokens: number) => {
      const model = loadModelCatalog()[0] as ReturnType<typeof loadModelCatalog>[number];
      let text = '';
      let end: unknown;
      for await (const event of provider.stream({
        model,
        turns: [{ role: 'user', content: 'hello' }],
        maxOutputTokens,
        sessionId: 's',
        signal: new AbortController().signal,
      })) {
        if (event.type === 'delta') text += event.text;
        else end = event;
      }
      return { text, end };
    };
    const a = await run(100);
    expect(a).to.deep.equal(await run(100));
    expect(a.text.split(' ')).to.have.length(8);
    // input: the tokenizer's count of 'hello' (1) with the message framing (4) and the reply priming (3)
    expect(a.end).to.deep.equal({ type: 'end', usage: { inputTokens: 8, outputTokens: 8 }, stopReason: 'end_turn' });
    expect((await run(3)).end).to.deep.include({ usage: { inputTokens: 8, outputTokens: 3 }, stopReason: 'max_tokens' });
  });

  it('detects allowed file types by content and cleans file names', () => {
    expect(detectType(Buffer.from('%PDF-1.7\n'), 'x.bin')).to.deep.equal({ contentType: 'application/pdf', text: false });
    expect(detectType(Buffer.from([0xff, 0xd8, 0xff, 0xe0]), 'a.txt')?.contentType).to.equal('image/jpeg');
    expect(detectType(Buffer.from('GIF89a....'), 'a')?.contentType).to.equal('image/gif');
    expect(detectType(Buffer.from('a,b\n1,2\n'), 'data.csv')).to.deep.equal({ contentType: 'text/csv', text: true });
    expect(detectType(Buffer.from('héllo wörld'), 'a.txt')?.text).to.equal(true);
    expect(detectType(Buffer.from([0x68, 0x00, 0x69]), 'a.txt')).to.equal(undefined);
    expect(detectType(Buffer.from([0xc3, 0x28]), 'a.txt')).to.equal(undefined); // invalid UTF-8
    expect(detectType(Buffer.alloc(0), 'a.txt')).to.equal(undefined);
    expect(safeFileName('../../etc/passwd')).to.equal('passwd');
    expect(safeFileName('C:\\temp\\a"b;c.txt')).to.equal('abc.txt');
    expect(safeFileName('...hidden')).to.equal('hidden');
    expect(safeFileName('\u0000\u0001')).to.equal('file');
    expect(safeFileName(undefined)).to.equal('file');
  });

  it('retries a write only on transient lock conflicts, a bounded number of times', async () => {
    let calls = 0;
    expect(
      await retryTransient(async () => {
        calls++;
        if (calls < 3) throw new Error('database is locked (5) (SQLITE_BUSY)');
        return 'ok';
      }),
    ).to.equal('ok');
    expect(calls).to.equal(3);
    calls = 0;
    const failing = retryTransient(async () => {
      calls++;
      throw new Error('E11000 duplicate key');
    });
    await failing.then(
      () => expect.fail('should fail'),
      (error: Error) => expect(error.message).to.match(/duplicate/),
    );
    expect(calls).to.equal(1);
    calls = 0;
    await retryTransient(async () => {
      calls++;
      throw new Error('SQLITE_BUSY');
    }, 2).catch(() => undefined);
    expect(calls).to.equal(2);
  });

  it('titles a session from the first line of its first message', () => {
    expect(titleFrom('  Hello   world \nmore')).to.equal('Hello world');
    expect(titleFrom('x'.repeat(100))).to.have.length(80);
    expect(titleFrom('   ')).to.equal('New chat');
  });
});
