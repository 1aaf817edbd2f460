import { createHmac, randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { Actor } from '../../src/claims.ts';
import { identitySigner, signIdentityHeaders, verifyIdentityHeaders } from '../../src/identity-signature.ts';

/** DESIGN section 3's signed text, spelled out: v2, timestamp, METHOD, path, service, the values, akid when a key */
function expectedSignature(secret: string, timestamp: number, actor: Actor, requestId: string, binding: { method: string; path: string; service: string }) {
  const values = [actor.userId, actor.username, actor.email, actor.role, actor.jti ?? '', requestId, ...(actor.apiKeyId ? [`akid:${actor.apiKeyId}`] : [])];
  const text = ['v2', String(timestamp), binding.method.toUpperCase(), binding.path, binding.service, ...values].join('\n');
  return `t=${timestamp},v2=${createHmac('sha256', secret).update(text).digest('hex')}`;
}

describe('identitySigner: the identity headers written into the forwarded headers (the gateway hot path)', () => {
  const secret = randomBytes(48).toString('base64url');
  const sign = identitySigner(secret);
  const binding = { method: 'post', path: '/api/chat/sessions/s1/messages', service: 'chat' };
  const actors: Actor[] = [
    { userId: 'u-1', username: 'ada', email: 'ada@example.test', role: 'enduser', jti: 'j-1' },
    { userId: 'u-2', username: 'bob', email: 'bob@example.test', role: 'admin' },
    { userId: 'u-3', username: 'ké', email: 'k@example.test', role: 'supervisor', jti: 'j-3', apiKeyId: 'key-9' },
  ];

  for (const actor of actors) {
    it(`signs ${actor.username}${actor.apiKeyId ? ' (API key)' : ''}${actor.jti ? '' : ' (no jti)'} over the text DESIGN 3 fixes, beside the other headers, and the verifier accepts it`, () => {
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string | string[]> = { accept: 'application/json' };
      sign(headers, actor, 'req-0001', binding, timestamp);
      expect(headers['x-identity-signature']).to.equal(expectedSignature(secret, timestamp, actor, 'req-0001', binding));
      expect(headers).to.deep.equal({ accept: 'application/json', ...signIdentityHeaders(secret, actor, 'req-0001', binding, timestamp) });
      expect(verifyIdentityHeaders(secret, headers, binding, timestamp)).to.deep.equal(actor);
    });
  }

  it('is bound to the method, path, service and request id it signed for, and to the secret', () => {
    const headers: Record<string, string | string[]> = {};
    sign(headers, actors[0] as Actor, 'req-0002', binding);
    for (const other of [
      { ...binding, method: 'GET' },
      { ...binding, path: '/api/chat/sessions/s2/messages' },
      { ...binding, service: 'auth' },
    ]) {
      expect(() => verifyIdentityHeaders(secret, headers, other)).to.throw('Invalid identity signature');
    }
    expect(() => verifyIdentityHeaders(secret, { ...headers, 'x-request-id': 'req-0003' }, binding)).to.throw('Invalid identity signature');
    expect(() => verifyIdentityHeaders(randomBytes(48).toString('base64url'), headers, binding)).to.throw('Invalid identity signature');
  });
});
