import { parseConfig } from '@platform/shared-types';
import { testSecrets } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { configSchema } from '../../src/config.ts';

describe('chat config', () => {
  const base = { ...testSecrets(), MONGO_URL: 'mongodb://127.0.0.1:27017', REDIS_URL: 'redis://127.0.0.1:6379' };

  it('defaults to the local model only, with the documented limits, and no secret defaults', () => {
    const result = parseConfig(configSchema, base);
    if (!result.ok) throw new Error(result.issues.join(', '));
    expect(result.config).to.include({
      PORT: 3002,
      ACCOUNTING_URL: 'http://127.0.0.1:3001',
      MONITORING_URL: 'http://127.0.0.1:3003',
      LOCAL_MODEL_TOKENS: 200,
      LOCAL_MODEL_TOKEN_DELAY_MS: 15,
      HEARTBEAT_MS: 15_000,
      FILE_MAX_BYTES: 10 * 1024 * 1024,
      FILE_UPLOADS_PER_DAY: 10,
    });
    for (const key of ['AWS_REGION', 'OPENAI_BASE_URL', 'OPENAI_API_KEY', 'FLOWISE_URL', 'FLOWISE_API_KEY']) expect(result.config).to.not.have.property(key);
  });

  it('refuses bad values by name', () => {
    const result = parseConfig(configSchema, { ...base, OPENAI_BASE_URL: 'not a url', LOCAL_MODEL_TOKENS: '0', INTERNAL_SECRET: 'short' });
    expect(result.ok).to.equal(false);
    if (result.ok) return;
    expect(result.issues.join('\n'))
      .to.match(/OPENAI_BASE_URL/)
      .and.match(/LOCAL_MODEL_TOKENS/)
      .and.match(/INTERNAL_SECRET/);
    expect(result.issues.join('\n')).to.not.include('short');
  });
});
