import { expectProblem, testActor } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { FormData } from 'undici';
import { createSession, fetch, type Platform, startPlatform, streamMessage } from '../support/harness.ts';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);

describe('files: upload, type allowlist by content, quota, owner-only access, attachments (real MongoDB-compatible server)', () => {
  let platform: Platform;
  const url = (path: string) => `${platform.instances[0]?.url}${path}`;

  const upload = (actor: ReturnType<typeof testActor>, name: string, data: Buffer | string, type = 'application/octet-stream') => {
    const form = new FormData();
    form.append('file', new Blob([data], { type }), name);
    return fetch(url('/api/chat/files'), { method: 'POST', headers: platform.headers(actor), body: form });
  };

  before(async () => {
    // concurrent uploads are capped per user (uploads-streaming.test.ts); here six at once must all reach the quota check
    platform = await startPlatform({
      env: { FILE_UPLOADS_PER_DAY: '3', FILE_MAX_BYTES: '600000', FILE_PROMPT_MAX_CHARS: '400', FILE_MAX_CONCURRENT_UPLOADS: '6' },
    });
  });
  after(async () => {
    await platform.stop();
  });

  it('stores a text file (chunked, larger than one chunk), lists it, and lets only its owner download it', async () => {
    const owner = testActor('enduser');
    const content = `${'line of notes\n'.repeat(40_000)}end`; // ~560 KB: three chunks
    const response = await upload(owner, '../../etc/notes<1>.txt', content, 'image/png');
    expect(response.status).to.equal(201);
    const { file } = (await response.json()) as { file: { id: string; name: string; contentType: string; size: number; text: boolean } };
    expect(file).to.include({ name: 'notes1.txt', contentType: 'text/plain', text: true, size: Buffer.byteLength(content) });

    const list = (await (await fetch(url('/api/chat/files'), { headers: platform.headers(owner) })).json()) as { files: Array<{ id: string }> };
    expect(list.files.map((f) => f.id)).to.deep.equal([file.id]);
    const download = await fetch(url(`/api/chat/files/${file.id}`), { headers: platform.headers(owner) });
    expect(download.status).to.equal(200);
    expect(download.headers.get('content-disposition')).to.match(/^attachment; filename="notes1.txt"/);
    expect(download.headers.get('x-content-type-options')).to.equal('nosniff');
    expect(await download.text()).to.equal(content);

    const other = testActor('enduser');
    await expectProblem(await fetch(url(`/api/chat/files/${file.id}`), { headers: platform.headers(other) }), 404, 'NOT_FOUND');
    const otherList = (await (await fetch(url('/api/chat/files'), { headers: platform.headers(other) })).json()) as { files: unknown[] };
    expect(otherList.files).to.deep.equal([]);
  });

  it('checks the type by content: a PNG named .txt is a PNG, binary junk is 415 whatever its name; too large is 413; non-multipart is 415', async () => {
    const user = testActor('enduser');
    const png = await upload(user, 'picture.txt', PNG, 'text/plain');
    expect(png.status).to.equal(201);
    expect(((await png.json()) as { file: { contentType: string; text: boolean } }).file).to.include({ contentType: 'image/png', text: false });
    await expectProblem(await upload(user, 'notes.txt', Buffer.from([0x4d, 0x5a, 0x90, 0x00, 0x03, 0x00, 0xff, 0xfe])), 415, 'UNSUPPORTED_MEDIA_TYPE');
    await expectProblem(await upload(user, 'big.txt', 'x'.repeat(600_001)), 413, 'PAYLOAD_TOO_LARGE');
    await expectProblem(
      await fetch(url('/api/chat/files'), { method: 'POST', headers: platform.json(user), body: JSON.stringify({ file: 'x' }) }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    const empty = new FormData();
    empty.append('note', 'no file here');
    await expectProblem(await fetch(url('/api/chat/files'), { method: 'POST', headers: platform.headers(user), body: empty }), 400, 'VALIDATION_FAILED');
    // refused uploads did not count against the quota
    const quota = (await (await fetch(url('/api/chat/files/quota'), { headers: platform.headers(user) })).json()) as { used: number };
    expect(quota.used).to.equal(1);
  });

  it('enforces the daily upload quota with QUOTA_EXCEEDED and the counts', async () => {
    const user = testActor('enduser');
    for (let i = 0; i < 3; i++) expect((await upload(user, `n${i}.md`, `# note ${i}`)).status).to.equal(201);
    const quota = (await (await fetch(url('/api/chat/files/quota'), { headers: platform.headers(user) })).json()) as Record<string, unknown>;
    expect(quota).to.include({ used: 3, limit: 3, remaining: 0 });
    const refused = await expectProblem(await upload(user, 'n4.md', '# one too many'), 429, 'QUOTA_EXCEEDED');
    expect(refused).to.include({ used: 3, limit: 3 });
    expect(refused.resetsAt).to.be.a('string');
  });

  it('never lets concurrent uploads pass the quota', async () => {
    const user = testActor('enduser');
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => upload(user, `c${i}.txt`, `note ${i}`)));
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s !== 201 && s !== 429)).to.deep.equal([]);
    const quota = (await (await fetch(url('/api/chat/files/quota'), { headers: platform.headers(user) })).json()) as { used: number };
    expect(quota.used).to.be.at.most(3);
    expect(statuses.filter((s) => s === 201)).to.have.length(quota.used);
    // exactly the quota's number succeed: refusing them all would also "not pass the quota"
    expect(
      statuses.filter((s) => s === 201),
      statuses.join(','),
    ).to.have.length(3);
    expect(
      statuses.filter((s) => s === 429),
      statuses.join(','),
    ).to.have.length(3);
  });

  it('adds attached text files to the prompt within the size cap; refuses binary or foreign files', async () => {
    const user = testActor('enduser');
    const note = ((await (await upload(user, 'long.txt', 'fact '.repeat(1000))).json()) as { file: { id: string } }).file.id;
    const image = ((await (await upload(user, 'pic.png', PNG)).json()) as { file: { id: string } }).file.id;
    const sessionId = await createSession(platform, user);
    const plain = await streamMessage(platform, user, sessionId, 'summarize');
    await plain.waitForEnd();
    const attached = await streamMessage(platform, user, sessionId, 'summarize', 0, { fileIds: [note] });
    await attached.waitForEnd();
    expect(attached.terminal()?.event).to.equal('done');
    const inputOf = (stream: typeof plain) =>
      platform.accounting.calls.find((c) => c.path.endsWith('/initialize') && c.body.reservationId === stream.events[0]?.data.reservationId)?.body
        .inputTokens as number;
    const plainInput = inputOf(plain);
    const attachedInput = inputOf(attached);
    // 400 characters of the file (cap) are about 100 tokens more, not the whole 5,000 characters
    expect(attachedInput - plainInput)
      .to.be.greaterThan(90)
      .and.lessThan(200);

    const post = (fileIds: string[]) =>
      fetch(url(`/api/chat/sessions/${sessionId}/stream`), {
        method: 'POST',
        headers: platform.json(user),
        body: JSON.stringify({ message: 'look', fileIds }),
      });
    await expectProblem(await post([image]), 400, 'VALIDATION_FAILED');
    const stranger = testActor('enduser');
    const theirs = ((await (await upload(stranger, 's.txt', 'secret')).json()) as { file: { id: string } }).file.id;
    await expectProblem(await post([theirs]), 404, 'NOT_FOUND');
  });
});
