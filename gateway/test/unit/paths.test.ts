import { expect } from 'chai';
import { parseTarget } from '../../src/engine/paths.ts';

describe('unit: request target handling', () => {
  it('keeps plain paths, splits the query, and matches without a trailing slash', () => {
    expect(parseTarget('/api/credits/balance?userId=1')).to.deep.equal({
      ok: true,
      path: '/api/credits/balance',
      matchPath: '/api/credits/balance',
      query: '?userId=1',
      internal: false,
    });
    expect(parseTarget('/monitoring/')).to.include({ ok: true, path: '/monitoring/', matchPath: '/monitoring' });
    expect(parseTarget('/')).to.include({ ok: true, matchPath: '/' });
    expect(parseTarget('/api/chat/sessions/%41b')).to.include({ ok: true, path: '/api/chat/sessions/%41b', matchPath: '/api/chat/sessions/Ab' });
  });

  it('refuses traversal and ambiguous encodings', () => {
    for (const target of [
      '/a/../b',
      '/a/./b',
      '/a//b',
      '/a\\b',
      '/a/%2e%2e/b',
      '/a/%2E/b',
      '/a%2fb',
      '/a%5cb',
      '/a/%252e',
      '/a%00',
      '/%zz',
      'http://x/a',
      '*',
      '/a/%0a',
      '/api/auth/login;jsessionid=1',
      '/api/auth;x=1/login',
      '/api/auth/login%3B',
      '/api/auth/login%3bx',
      '/api/auth/login%23',
      '/api/auth/login#',
      '/api/auth/login#frag',
      '/api/auth/login?next=#x',
    ]) {
      expect(parseTarget(target).ok, target).to.equal(false);
    }
  });

  it('flags /internal in every spelling', () => {
    for (const target of ['/internal', '/internal/', '/INTERNAL/x', '/%69nternal/x', '/internal/x?y=1'])
      expect(parseTarget(target), target).to.include({ ok: true, internal: true });
    for (const target of ['//internal/x', '/api/../internal', '/api/%2e%2e/internal', '/%2finternal', '/api\\..\\internal', '/api/%252e%252e/internal']) {
      expect(parseTarget(target), target).to.include({ ok: false, internal: true });
    }
    expect(parseTarget('/api/chat/sessions/internal-notes')).to.include({ ok: true, internal: false });
  });
});
