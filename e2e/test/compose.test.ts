// Docker does not run on our machines, so the compose file and Dockerfiles are checked as data.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';

const root = new URL('../..', import.meta.url).pathname;
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      image?: string;
      ports?: string[];
      networks?: string[];
      healthcheck?: unknown;
      env_file?: string;
      environment?: Record<string, string>;
      volumes?: string[];
    }
  >;
  networks: Record<string, { internal?: boolean }>;
};
const apps = ['gateway', 'auth', 'accounting', 'chat', 'monitoring'];

describe('docker-compose.yml', () => {
  it('publishes only the gateway, on 8080', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      if (name === 'gateway') expect(service.ports).to.deep.equal(['8080:8080']);
      else expect(service.ports, name).to.equal(undefined);
    }
  });

  it('keeps services and stores on an internal-only network', () => {
    expect(compose.networks.internal?.internal).to.equal(true);
    for (const name of ['auth', 'accounting', 'chat', 'monitoring', 'mongo', 'postgres', 'redis']) {
      expect(compose.services[name]?.networks, name).to.deep.equal(['internal']);
    }
    expect(compose.services.gateway?.networks).to.include('internal');
  });

  it('runs mongo:7, postgres:16 (creating both databases) and redis:7', () => {
    expect(compose.services.mongo?.image).to.equal('mongo:7');
    expect(compose.services.postgres?.image).to.equal('postgres:16');
    expect(compose.services.redis?.image).to.equal('redis:7');
    const init = compose.services.postgres?.volumes?.find((v) => v.includes('docker-entrypoint-initdb.d'));
    const sql = readFileSync(join(root, (init as string).split(':')[0] as string), 'utf8');
    expect(sql).to.match(/CREATE DATABASE accounting/);
    expect(sql).to.match(/CREATE DATABASE monitoring/);
  });

  it('has a healthcheck for every container', () => {
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck, name).to.not.equal(undefined);
  });

  it('takes secrets from an env file, never literal values', () => {
    for (const name of apps) expect(compose.services[name]?.env_file, name).to.equal('.env');
    const text = readFileSync(join(root, 'docker-compose.yml'), 'utf8');
    for (const match of text.matchAll(/(SECRET|PASSWORD)[A-Z_]*:\s*(\S+)/g)) expect(match[2], match[0]).to.match(/^\$\{[A-Z_]+\}$/);
    for (const match of text.matchAll(/:\/\/[^:\s]*:([^@\s]+)@/g)) expect(match[1], match[0]).to.match(/^\$\{[A-Z_]+\}$/);
  });
});

describe('Dockerfiles', () => {
  for (const name of apps) {
    it(`${name}: node:24-slim, production dependencies only, non-root`, () => {
      const text = readFileSync(join(root, name, 'Dockerfile'), 'utf8');
      expect(text).to.match(/^FROM node:24-slim/m);
      expect(text).to.match(/npm (ci|install) --omit=dev/);
      expect(text).to.match(/^USER node$/m);
    });
  }
});
