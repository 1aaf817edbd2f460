// Docker does not run on our machines, so the compose file and Dockerfiles are checked as data.
import { readdirSync, readFileSync } from 'node:fs';
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

describe('Dockerfiles', () => {
  for (const name of apps) {
    it(`${name}: node:24-slim, production dependencies only, non-root`, () => {
      const text = readFileSync(join(root, name, 'Dockerfile'), 'utf8');
      expect(text).to.match(/^FROM node:24-slim/m);
      expect(text).to.match(/npm (ci|install) --omit=dev/);
      expect(text).to.match(/^USER node$/m);
    });
    it(`${name}: starts as \`npm start\` does, with the OpenTelemetry preload (traces when OTEL_EXPORTER_OTLP_ENDPOINT is set)`, () => {
      const text = readFileSync(join(root, name, 'Dockerfile'), 'utf8');
      const cmd = JSON.parse(/^CMD (\[.*\])$/m.exec(text)?.[1] ?? 'null') as string[] | null;
      expect(cmd).to.deep.equal(['node', ...startFlags(name as PartName), 'src/main.ts']);
      expect(cmd).to.include('--import=@platform/shared-types/telemetry');
    });
  }
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
