// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are config substitution syntax, not templates
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { DEFAULT_GATEWAY_CONFIG } from '../../src/config.ts';
import { compilePathPattern } from '../../src/engine/conditions.ts';
import { parseGatewayConfig, substitute } from '../../src/engine/gateway-config.ts';

describe('unit: gateway config', () => {
  it('substitutes ${VAR} and ${VAR:-default} in string values only', () => {
    const missing: string[] = [];
    const out = substitute({ a: '${A}', b: '${B:-fallback}', c: ['x-${A}-y'], d: 5, e: '${EMPTY:-used}' }, { A: 'one', EMPTY: '' }, missing);
    expect(out).to.deep.equal({ a: 'one', b: 'fallback', c: ['x-one-y'], d: 5, e: 'used' });
    substitute({ a: '${NOPE}' }, {}, missing);
    expect(missing[0]).to.include('NOPE');
  });

  it('never lets a substituted value inject YAML structure', () => {
    const text = 'http:\n  port: 0\napiEndpoints: {}\nserviceEndpoints: {}\npolicies: [proxy]\npipelines: {}\nnote: ${EVIL}\n';
    const parsed = parseGatewayConfig(text, { EVIL: 'x\npipelines: {hijack: 1}' });
    expect(parsed.ok).to.equal(false); // unknown top-level key `note`, not a hijacked pipelines section
    if (!parsed.ok) expect(parsed.issues.join()).to.include('note');
  });

  it('validates the shipped config', () => {
    const parsed = parseGatewayConfig(readFileSync(DEFAULT_GATEWAY_CONFIG, 'utf8'), {});
    expect(parsed.ok, parsed.ok ? '' : parsed.issues.join('\n')).to.equal(true);
    if (!parsed.ok) return;
    expect(parsed.config.http.port).to.equal(8080);
    expect(parsed.config.redis.failMode).to.equal('open');
    expect(Object.keys(parsed.config.pipelines)).to.include.members([
      'login',
      'public-auth',
      'dashboard',
      'chat-stream',
      'chat-events',
      'chat-download',
      'observe',
      'health',
      'docs',
    ]);
    // metrics are served on the ops listener only (DESIGN 7)
    expect(Object.keys(parsed.config.pipelines)).not.to.include('metrics');
    expect(parsed.config.policies).not.to.include('metrics');
    expect(Object.values(parsed.config.apiEndpoints).flatMap((e) => e.paths)).not.to.include('/metrics');
  });

  it('refuses schema violations with their paths', () => {
    const parsed = parseGatewayConfig('http: {port: 99999}\napiEndpoints: {}\nserviceEndpoints: {a: {url: nope}}\npolicies: []\npipelines: {}\n', {});
    expect(parsed.ok).to.equal(false);
    if (!parsed.ok) expect(parsed.issues.join('\n')).to.include('http.port').and.include('serviceEndpoints.a.url').and.include('policies');
  });

  it('matches paths: exact, :param, and trailing /* for deeper paths only', () => {
    expect(compilePathPattern('/api/auth/login').test('/api/auth/login')).to.equal(true);
    expect(compilePathPattern('/api/auth/login').test('/api/auth/login/x')).to.equal(false);
    const stream = compilePathPattern('/api/chat/sessions/:id/stream');
    expect(stream.test('/api/chat/sessions/abc/stream')).to.equal(true);
    expect(stream.test('/api/chat/sessions/a/b/stream')).to.equal(false);
    const wildcard = compilePathPattern('/api/credits/*');
    expect(wildcard.test('/api/credits/balance')).to.equal(true);
    expect(wildcard.test('/api/credits/a/b')).to.equal(true);
    expect(wildcard.test('/api/credits')).to.equal(false);
    expect(wildcard.test('/api/creditsx/y')).to.equal(false);
    expect(compilePathPattern('/api/v1.0').test('/api/v1x0')).to.equal(false);
  });
});
