import { randomBytes } from 'node:crypto';
import { type Actor, signIdentityHeaders, verifyIdentityHeaders } from '@platform/shared-types';
import { expect } from 'chai';
import { identitySigner } from '../../src/policies/identity-signer.ts';

describe('gateway: the identity signer is shared-types signIdentityHeaders, byte for byte', () => {
  const secret = randomBytes(48).toString('base64url');
  const sign = identitySigner(secret);
  const binding = { method: 'post', path: '/api/chat/sessions/s1/messages', service: 'chat' };
  const actors: Actor[] = [
    { userId: 'u-1', username: 'ada', email: 'ada@example.test', role: 'enduser', jti: 'j-1' },
    { userId: 'u-2', username: 'bob', email: 'bob@example.test', role: 'admin' },
    { userId: 'u-3', username: 'ké', email: 'k@example.test', role: 'supervisor', jti: 'j-3', apiKeyId: 'key-9' },
  ];

  for (const actor of actors) {
    it(`signs ${actor.username}${actor.apiKeyId ? ' (API key)' : ''}${actor.jti ? '' : ' (no jti)'} exactly as shared-types does, and its verifier accepts it`, () => {
      const timestamp = Math.floor(Date.now() / 1000);
      const headers: Record<string, string | string[]> = { accept: 'application/json' };
      sign(headers, actor, 'req-0001', binding, timestamp);
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
