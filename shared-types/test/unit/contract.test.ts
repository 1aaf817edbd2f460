import { expect } from 'chai';
import { z } from 'zod';
import { parseConfig, secretsSchema } from '../../src/config.ts';
import { ERROR_CODES, problem } from '../../src/errors.ts';
import { IDENTITY_CLAIM_HEADERS, isStrippedHeader, STRIPPED_HEADER_PREFIXES } from '../../src/headers.ts';
import { creditsFor, loadModelCatalog } from '../../src/models.ts';
import { testSecrets } from '../../src/testing/index.ts';

describe('config', () => {
  it('refuses to start without secrets, naming fields but never values', () => {
    const result = parseConfig(secretsSchema, { JWT_ACCESS_SECRET: 'short-secret-value' });
    expect(result.ok).to.equal(false);
    const issues = (result as { issues: string[] }).issues.join('\n');
    expect(issues).to.match(/JWT_ACCESS_SECRET/);
    expect(issues).to.match(/JWT_REFRESH_SECRET/);
    expect(issues).not.to.include('short-secret-value');
  });

  it('freezes what it parsed', () => {
    const result = parseConfig(secretsSchema.extend({ nested: z.object({ a: z.number() }).default({ a: 1 }) }), testSecrets());
    if (!result.ok) throw new Error('should parse');
    expect(Object.isFrozen(result.config)).to.equal(true);
    expect(Object.isFrozen(result.config.nested)).to.equal(true);
  });
});

describe('problem+json', () => {
  it('builds the DESIGN shape with the status of the code', () => {
    const body = problem('INSUFFICIENT_CREDITS', 'need 5 more', 'req-1');
    expect(body).to.include({
      status: 402,
      code: 'INSUFFICIENT_CREDITS',
      detail: 'need 5 more',
      requestId: 'req-1',
      title: ERROR_CODES.INSUFFICIENT_CREDITS.title,
    });
    expect(body.type).to.match(/^https:\/\//);
    expect(problem('UPSTREAM_UNAVAILABLE', 'x', 'r', { status: 502 }).status).to.equal(502);
  });
});

describe('model catalog', () => {
  it('loads, with nonzero prices and the local model', () => {
    const models = loadModelCatalog();
    expect(models.map((m) => m.id)).to.include('local-dev');
    for (const model of models) expect(model.prices.outputPer1k).to.be.greaterThan(0);
  });

  it('charges integer credits rounded up, at least 1 for any output', () => {
    expect(creditsFor({ inputPer1k: 1, outputPer1k: 2 }, 0, 1)).to.equal(1);
    expect(creditsFor({ inputPer1k: 1, outputPer1k: 2 }, 1000, 1000)).to.equal(3);
    expect(creditsFor({ inputPer1k: 3, outputPer1k: 15 }, 1001, 0)).to.equal(4);
  });
});

describe('stripped identity headers', () => {
  // isStrippedHeader settles any name not starting with x on its first character: a stripped name that does not
  // start with `x-` would never be stripped
  it('every stripped prefix and identity claim header starts with x-, and each is stripped in any case', () => {
    const names = [...STRIPPED_HEADER_PREFIXES.map((prefix) => `${prefix}anything`), ...IDENTITY_CLAIM_HEADERS];
    for (const name of names) {
      expect(name.startsWith('x-'), name).to.equal(true);
      expect([name, name.toUpperCase(), `X${name.slice(1)}`].map(isStrippedHeader), name).to.deep.equal([true, true, true]);
    }
    expect(['authorization', 'content-type', 'x-request-id', 'x-forwarded-for'].map(isStrippedHeader)).to.deep.equal([false, false, false, false]);
  });
});
