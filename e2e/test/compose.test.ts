// Docker does not run on our machines, so the compose file and the Dockerfile are checked as data.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { type PartName, startFlags } from '../../scripts/platform.ts';

const root = new URL('../..', import.meta.url).pathname;
const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      image?: string;
      build?: unknown;
      profiles?: string[];
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
  it('publishes only the gateway, on 8080; the ops UIs (Grafana, Jaeger) on loopback only', () => {
    const loopbackOnly: Record<string, string[]> = { grafana: ['127.0.0.1:3300:3000'], jaeger: ['127.0.0.1:16686:16686'] };
    for (const [name, service] of Object.entries(compose.services)) {
      if (name === 'gateway') expect(service.ports).to.deep.equal(['8080:8080']);
      else if (loopbackOnly[name]) expect(service.ports, name).to.deep.equal(loopbackOnly[name]);
      else expect(service.ports, name).to.equal(undefined);
    }
  });

  it('keeps services and stores on an internal-only network', () => {
    expect(compose.networks.internal?.internal).to.equal(true);
    for (const name of ['auth', 'accounting', 'chat', 'monitoring', 'mongo', 'postgres', 'redis']) {
      expect(compose.services[name]?.networks, name).to.deep.equal(['internal']);
    }
    expect(compose.services.gateway?.networks).to.include('internal');
    // ops: Prometheus reaches the parts' ops ports; Grafana only Prometheus; Jaeger takes OTLP from the parts
    expect(compose.services.prometheus?.networks).to.have.members(['internal', 'ops']);
    expect(compose.services.grafana?.networks).to.deep.equal(['ops']);
    expect(compose.services.jaeger?.networks).to.have.members(['internal', 'ops']);
    expect(compose.networks.ops?.internal).to.not.equal(true);
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

/** The Dockerfile's instructions (continuation lines joined, comments dropped), grouped by build stage. */
function dockerStages(text: string): Array<{ from: string; name?: string; instructions: Array<{ op: string; args: string }> }> {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const stages: Array<{ from: string; name?: string; instructions: Array<{ op: string; args: string }> }> = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, from = '', name] = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ from, name, instructions: [] });
    } else stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
  }
  return stages;
}

describe('Dockerfile (one for every part, PART build argument)', () => {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const stages = dockerStages(text);
  const runtime = stages.at(-1) as (typeof stages)[number];
  const all = (op: string, stage = runtime) => stage.instructions.filter((instruction) => instruction.op === op);
  const runs = stages.flatMap((stage) => all('RUN', stage).map((run) => run.args)).join('\n');

  it('replaces the per-part Dockerfiles; compose builds every part from it with PART set', () => {
    for (const name of apps) expect(existsSync(join(root, name, 'Dockerfile')), `${name}/Dockerfile`).to.equal(false);
    for (const name of apps) {
      expect(compose.services[name]?.build, name).to.deep.equal({ context: '.', args: { PART: name } });
    }
    expect(runs).to.match(/case "\$PART" in gateway\|auth\|accounting\|chat\|monitoring\)/);
  });

  it('builds on node:24-slim and installs with npm ci from the lock, production only, pruned to the part', () => {
    for (const stage of stages) expect(stage.from === 'node:24-slim' || stages.some((other) => other.name === stage.from), stage.from).to.equal(true);
    const deps = stages[0] as (typeof stages)[number];
    const copied = all('COPY', deps).flatMap((copy) => copy.args.split(/\s+/).slice(0, -1));
    expect(copied).to.include('package-lock.json');
    // npm ci refuses a lock whose workspaces it cannot all find
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { workspaces: string[] };
    for (const dir of manifest.workspaces) expect(copied, dir).to.include(`${dir}/package.json`);
    expect(runs).to.match(/npm ci --omit=dev --workspace="\$PART"/);
    expect(runs).to.not.match(/npm install/);
    expect(runs).to.match(/node scripts\/part-closure\.ts prune "\$PART"/);
  });

  it('runs as the non-root user over app files owned by root and read-only to it', () => {
    const users = all('USER');
    expect(users.at(-1)?.args).to.equal('node');
    // everything the runtime stage gets comes from the assembled /out, as root's, with no write bit for others
    const copies = all('COPY');
    expect(copies.length).to.be.greaterThan(0);
    for (const copy of copies) expect(copy.args, copy.args).to.match(/^--from=\S+ --chown=root:root /);
    expect(runs).to.match(/chown -R root:root \/out/);
    expect(runs).to.match(/chmod -R u=rwX,go=rX \/out/);
    // nothing runs after USER that could hand the files back
    const afterUser = runtime.instructions.slice(runtime.instructions.findIndex((instruction) => instruction.op === 'USER'));
    expect(afterUser.filter((instruction) => instruction.op === 'RUN' || instruction.op === 'COPY' || instruction.op === 'ADD')).to.deep.equal([]);
  });

  it('has a HEALTHCHECK asking /readyz: the services on PORT, the gateway on its ops listener (OPS_PORT), defaults as in their configs', async () => {
    const checks = all('HEALTHCHECK');
    expect(checks).to.have.length(1);
    expect(checks[0]?.args).to.match(/CMD \["node", "\/app\/healthcheck\.mjs"\]$/);
    // plain JS on purpose (run every few seconds in the container): loaded by path, untyped
    const healthcheck = '../../scripts/healthcheck.mjs';
    const { readinessUrl } = (await import(healthcheck)) as { readinessUrl: (env: Record<string, string>) => string };
    // a port default is written `VARIABLE: portSchema(N)`, or for PORT as the shared base schema's `{ port: N }`
    const configDefault = (name: string, variable: string) => {
      const source = readFileSync(join(root, name, 'src', 'config.ts'), 'utf8');
      const own = new RegExp(`${variable}: portSchema\\((\\d+)\\)`).exec(source)?.[1];
      return own ?? (variable === 'PORT' ? /ConfigSchema\(\{ port: (\d+) \}\)/.exec(source)?.[1] : undefined);
    };
    for (const name of apps) {
      const port = name === 'gateway' ? configDefault(name, 'OPS_PORT') : configDefault(name, 'PORT');
      expect(port, name).to.match(/^\d+$/);
      expect(readinessUrl({ PART: name }), name).to.equal(`http://127.0.0.1:${port}/readyz`);
    }
    expect(readinessUrl({ PART: 'gateway', PORT: '8080', OPS_PORT: '9100' })).to.equal('http://127.0.0.1:9100/readyz');
    expect(readinessUrl({ PART: 'chat', PORT: '3002', OPS_PORT: '9100' })).to.equal('http://127.0.0.1:3002/readyz');
    expect(() => readinessUrl({ PART: 'redis' })).to.throw(/PART must be one of/);
    // compose keeps the image's test (only its timing in the file)
    for (const name of apps) {
      const check = compose.services[name]?.healthcheck as { test?: unknown; interval?: string } | undefined;
      expect(check?.interval, name).to.be.a('string');
      expect(check?.test, name).to.equal(undefined);
    }
  });

  for (const name of apps) {
    it(`${name}: starts as \`npm start\` does, with the OpenTelemetry preload (traces when OTEL_EXPORTER_OTLP_ENDPOINT is set)`, () => {
      // the image's start.sh execs the part's start script, which must be exactly node, its flags and src/main.ts
      expect(JSON.parse(/^CMD (\[.*\])$/m.exec(text)?.[1] ?? 'null')).to.deep.equal(['/app/start.sh']);
      expect(runs).to.match(/require\('\/src\/\$PART\/package\.json'\)\.scripts\.start/);
      expect(runs).to.include("'#!/bin/sh\\nexec ' + start");
      const start = (JSON.parse(readFileSync(join(root, name, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
      expect(start.split(' ')).to.deep.equal(['node', ...startFlags(name as PartName), 'src/main.ts']);
      expect(startFlags(name as PartName)).to.include('--import=@platform/shared-types/telemetry');
    });
  }

  it('holds no secret: no secret-named ARG or ENV, .env and the dev stores never in the build context', () => {
    for (const stage of stages) {
      for (const instruction of stage.instructions.filter((i) => i.op === 'ARG' || i.op === 'ENV')) {
        expect(instruction.args, instruction.args).to.not.match(/SECRET|PASSWORD|TOKEN|_KEY|PRIVATE/i);
      }
    }
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['.env', '.data', '.git', '**/node_modules']) expect(ignored, entry).to.include(entry);
  });
});

describe('docker-compose.yml for ops: Prometheus, Grafana, tracing profile, .env.example', () => {
  const readRepo = (path: string) => readFileSync(join(root, path), 'utf8');
  const hostPath = (service: string, target: string) => {
    const volume = compose.services[service]?.volumes?.find((v) => v.split(':')[1] === target);
    expect(volume, `${service} mounts ${target}`).to.be.a('string');
    return (volume as string).split(':')[0]?.replace(/^\.\//, '') as string;
  };

  it("scrapes every part's private ops port (OPS_PORT), never its public port", () => {
    const prometheus = parse(readRepo(hostPath('prometheus', '/etc/prometheus/prometheus.yml'))) as {
      scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
    };
    for (const name of apps) {
      const env = compose.services[name]?.environment ?? {};
      expect(env.OPS_PORT, name).to.match(/^\d+$/);
      expect(env.OPS_PORT, name).to.not.equal(env.PORT);
      expect(env.OPS_HOST, name).to.equal('0.0.0.0');
      const job = prometheus.scrape_configs.find((config) => config.job_name === name);
      expect(
        job?.static_configs.flatMap((c) => c.targets),
        name,
      ).to.deep.equal([`${name}:${env.OPS_PORT}`]);
      expect(job?.metrics_path ?? '/metrics').to.equal('/metrics');
    }
    expect(compose.services.prometheus?.image).to.match(/^prom\/prometheus:v\d/);
  });

  it('provisions Grafana with the Prometheus data source and the platform dashboard', () => {
    const provisioning = hostPath('grafana', '/etc/grafana/provisioning');
    const datasources = parse(readRepo(`${provisioning}/datasources/prometheus.yml`)) as { datasources: Array<{ type: string; url: string; uid: string }> };
    expect(datasources.datasources[0]).to.include({ type: 'prometheus', url: 'http://prometheus:9090' });
    const providers = parse(readRepo(`${provisioning}/dashboards/platform.yml`)) as { providers: Array<{ options: { path: string } }> };
    expect(providers.providers[0]?.options.path).to.equal('/var/lib/grafana/dashboards');
    const dashboards = hostPath('grafana', '/var/lib/grafana/dashboards');
    const dashboard = JSON.parse(readRepo(`${dashboards}/platform-overview.json`)) as {
      uid: string;
      panels: Array<{ title: string; datasource: { uid: string }; targets: Array<{ expr: string }> }>;
    };
    const titles = dashboard.panels.map((panel) => panel.title.toLowerCase()).join(' | ');
    for (const topic of ['requests', 'errors', 'latency', 'streams', 'credits charged', 'outbox depth']) expect(titles).to.include(topic);
    for (const panel of dashboard.panels) expect(panel.datasource.uid, panel.title).to.equal(datasources.datasources[0]?.uid);
    expect(compose.services.grafana?.environment?.GF_SECURITY_ADMIN_PASSWORD).to.equal(`\${GRAFANA_ADMIN_PASSWORD}`);
  });

  it('queries only metrics a part registers', () => {
    const registered = new Set<string>();
    // shared-types: the services' HTTP metrics (http_requests_total, http_request_duration_seconds)
    for (const name of [...apps, 'shared-types']) {
      const files = readdirSync(join(root, name, 'src'), { recursive: true, encoding: 'utf8' }).filter((file) => file.endsWith('.ts'));
      for (const file of files) {
        // prom-client's `name: '...'`, and the gateway's map-kept series (`new FastCounter('...'`, `new FastHistogram('...'`)
        const source = readFileSync(join(root, name, 'src', file), 'utf8');
        for (const match of source.matchAll(/name: '([a-z_:]+)'|new Fast(?:Counter|Histogram)\(\s*'([a-z_:]+)'/g)) {
          registered.add((match[1] ?? match[2]) as string);
        }
      }
    }
    expect(registered).to.include('gateway_requests_total');
    const dashboard = JSON.parse(readRepo('deploy/grafana/dashboards/platform-overview.json')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const exprs = dashboard.panels.flatMap((panel) => panel.targets.map((target) => target.expr));
    const promqlFunctions = new Set(['histogram_quantile', '__name__']);
    const metrics = [
      ...new Set(exprs.flatMap((expr) => [...expr.matchAll(/\b_{0,2}[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b/g)].map((match) => match[0].replace(/_bucket$/, '')))),
    ].filter((name) => !promqlFunctions.has(name));
    expect(metrics.length).to.be.at.least(8);
    for (const metric of metrics) expect(registered.has(metric), metric).to.equal(true);
  });

  it('has an optional tracing profile: Jaeger takes OTLP, the parts export only when OTEL_EXPORTER_OTLP_ENDPOINT is set', () => {
    const jaeger = compose.services.jaeger;
    expect(jaeger?.profiles).to.deep.equal(['tracing']);
    expect(jaeger?.environment?.COLLECTOR_OTLP_ENABLED).to.equal('true');
    for (const [name, service] of Object.entries(compose.services)) {
      if (name !== 'jaeger') expect(service.profiles, name).to.equal(undefined);
    }
    for (const name of apps) expect(compose.services[name]?.environment?.OTEL_EXPORTER_OTLP_ENDPOINT, name).to.equal(`\${OTEL_EXPORTER_OTLP_ENDPOINT:-}`);
    // each part names its own spans (from its package name): one name for all would merge five services into one
    for (const name of apps) expect(compose.services[name]?.environment?.OTEL_SERVICE_NAME, name).to.equal(undefined);
  });

  it('lists in .env.example every variable the parts and the compose file read, with no secret filled in', () => {
    const example = readRepo('.env.example');
    const listed = new Set([...example.matchAll(/^#? ?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]));
    const read = new Set<string>();
    for (const file of [...apps.map((name) => `${name}/src/config.ts`), 'shared-types/src/config.ts']) {
      for (const match of readRepo(file).matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)) read.add(match[1] as string);
    }
    for (const file of ['gateway/config/gateway.config.yml', 'docker-compose.yml']) {
      const withoutComments = readRepo(file).replace(/^\s*#.*$/gm, '');
      for (const match of withoutComments.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)) read.add(match[1] as string);
    }
    expect(read.size).to.be.at.least(80);
    const missing = [...read].filter((name) => !listed.has(name));
    expect(missing).to.deep.equal([]);
    for (const match of example.matchAll(/^([A-Z][A-Z0-9_]*(SECRET|PASSWORD|KEY)[A-Z_]*)=(.*)$/gm)) expect(match[3], match[1]).to.equal('');
  });
});
