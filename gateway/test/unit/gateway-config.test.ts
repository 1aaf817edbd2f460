// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these strings are config substitution syntax, not templates
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { configSchema, DEFAULT_GATEWAY_CONFIG } from '../../src/config.ts';
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

  it('reads one url or several urls per service endpoint (a list or a comma-separated string) and refuses both, neither, or a repeat', () => {
    const text = (endpoint: string) => `http:\n  port: 0\napiEndpoints: {}\nserviceEndpoints:\n  chat:\n${endpoint}\npolicies: [proxy]\npipelines: {}\n`;
    const urlsOf = (endpoint: string, env: Record<string, string> = {}) => {
      const parsed = parseGatewayConfig(text(endpoint), env);
      return parsed.ok ? parsed.config.serviceEndpoints.chat?.urls : parsed.issues.join('\n');
    };
    expect(urlsOf('    url: http://a:1')).to.deep.equal(['http://a:1']);
    expect(urlsOf('    urls: [http://a:1, http://b:2]')).to.deep.equal(['http://a:1', 'http://b:2']);
    expect(urlsOf('    urls: ${CHAT_URLS}', { CHAT_URLS: 'http://a:1, http://b:2,' })).to.deep.equal(['http://a:1', 'http://b:2']);
    expect(urlsOf('    urls: "http://a:1,http://a:1/"')).to.include('lists an instance twice');
    expect(urlsOf('    urls: "http://a:1,nope"')).to.include('serviceEndpoints.chat.urls');
    expect(urlsOf('    url: http://a:1\n    urls: [http://b:2]')).to.include('give either url or urls');
    expect(urlsOf('    readyPath: /ready')).to.include('give either url or urls');
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

  it('declares and documents every variable the shipped file reads (schema, README, .env.example)', () => {
    const shipped = readFileSync(DEFAULT_GATEWAY_CONFIG, 'utf8').replace(/^\s*#.*$/gm, '');
    const variables = [...new Set([...shipped.matchAll(/\$\{([A-Z0-9_]+)(?::-[^}]*)?\}/g)].map((match) => String(match[1])))];
    expect(variables.length).to.be.greaterThan(20);
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const envExample = readFileSync(new URL('../../../.env.example', import.meta.url), 'utf8');
    const declared = Object.keys(configSchema.shape);
    const documentedRows = readme.split('\n').filter((line) => line.startsWith('| `'));
    for (const name of variables) {
      expect(declared, `${name} in the gateway config schema`).to.include(name);
      expect(
        documentedRows.some((row) => row.includes(`\`${name}\``)),
        `${name} in the README's environment table`,
      ).to.equal(true);
      expect(envExample, `${name} in .env.example`).to.match(new RegExp(`^#? ?${name}=`, 'm'));
    }
  });
});
