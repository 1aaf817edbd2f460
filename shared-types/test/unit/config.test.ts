import { expect } from 'chai';
import { z } from 'zod';
import { LOG_LEVELS, parseConfig, serviceConfigSchema } from '../../src/config.ts';

describe('base config schema', () => {
  const secrets = { JWT_ACCESS_SECRET: 'a'.repeat(32), JWT_REFRESH_SECRET: 'r'.repeat(32), INTERNAL_SECRET: 'i'.repeat(32) };
  const schema = serviceConfigSchema({ port: 3999 }).extend({ OWN_SETTING: z.string().default('own') });

  it('gives the shared defaults and keeps a part’s own settings', () => {
    const result = parseConfig(schema, { ...secrets, REDIS_URL: 'redis://127.0.0.1:6379' });
    expect(result.ok).to.equal(true);
    if (!result.ok) return;
    expect(result.config).to.include({ NODE_ENV: 'development', PORT: 3999, HOST: '127.0.0.1', REDIS_URL: 'redis://127.0.0.1:6379', OWN_SETTING: 'own' });
    expect(result.config.LOG_LEVEL).to.equal(undefined);
    expect(Object.isFrozen(result.config)).to.equal(true);
  });

  it('accepts every pino level and refuses anything else by name, never echoing secrets', () => {
    for (const level of LOG_LEVELS) expect(parseConfig(schema, { ...secrets, REDIS_URL: 'redis://r', LOG_LEVEL: level }).ok, level).to.equal(true);
    for (const level of ['warning', 'INFO', 'verbose', '']) {
      const result = parseConfig(schema, { ...secrets, REDIS_URL: 'redis://r', LOG_LEVEL: level });
      expect(result.ok, level).to.equal(false);
      if (!result.ok)
        expect(result.issues.join('\n'))
          .to.match(/^LOG_LEVEL: /m)
          .and.not.include(secrets.INTERNAL_SECRET);
    }
  });

  it('requires REDIS_URL as a redis:// URL and the secrets', () => {
    const result = parseConfig(schema, { REDIS_URL: 'http://r' });
    expect(result.ok).to.equal(false);
    if (result.ok) return;
    const fields = result.issues.map((issue) => issue.split(':')[0]);
    expect(fields).to.include.members(['REDIS_URL', 'JWT_ACCESS_SECRET', 'JWT_REFRESH_SECRET', 'INTERNAL_SECRET']);
  });
});
