// The Helm chart (deploy/helm/platform): `helm lint` and `helm template` pass, and every rendered manifest
// validates offline against the Kubernetes schemas (kubernetes-validate, strict: unknown fields refused).
// helm is built from its Go module and kubernetes-validate installed into .tools/ by deploy/scripts/ensure-k8s-tools.sh.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../../scripts/platform.ts';

const CHART = join(ROOT, 'deploy', 'helm', 'platform');
const CI_VALUES = join(CHART, 'ci-values.yaml');
const HELM = join(ROOT, '.tools', 'bin', 'helm');
const VALIDATE = join(ROOT, '.tools', 'py-k8s', 'bin', 'kubernetes-validate');
const PARTS = ['gateway', 'auth', 'accounting', 'chat', 'monitoring'];
const SERVICES = PARTS.filter((part) => part !== 'gateway');

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are checked field by field
type Manifest = { kind: string; metadata: { name: string }; spec: any; data?: Record<string, string> };

function run(command: string, args: string[]) {
  return spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 32 * 1024 * 1024 });
}

describe('Helm chart deploy/helm/platform', function () {
  this.timeout(60_000);
  let rendered: string;
  let manifests: Manifest[];
  const byKind = (kind: string) => manifests.filter((m) => m.kind === kind);
  const named = (kind: string, name: string) => byKind(kind).find((m) => m.metadata.name === name) as Manifest;

  before(function () {
    this.timeout(20 * 60_000); // the first run builds helm from source
    const setup = spawnSync('bash', [join(ROOT, 'deploy', 'scripts', 'ensure-k8s-tools.sh')], { stdio: 'inherit' });
    expect(setup.status, 'ensure-k8s-tools.sh').to.equal(0);
    const template = run(HELM, ['template', 'rel', CHART, '-f', CI_VALUES]);
    expect(template.status, template.stderr).to.equal(0);
    rendered = template.stdout;
    manifests = parseAllDocuments(rendered)
      .map((doc) => doc.toJS() as Manifest)
      .filter(Boolean);
  });

  it('passes helm lint --strict', () => {
    const lint = run(HELM, ['lint', CHART, '--strict', '-f', CI_VALUES]);
    expect(lint.status, `${lint.stdout}\n${lint.stderr}`).to.equal(0);
    expect(lint.stdout).to.include('0 chart(s) failed');
  });

  it('refuses to render without the secrets (no default secret in the chart)', () => {
    const template = run(HELM, ['template', 'rel', CHART]);
    expect(template.status).to.not.equal(0);
    expect(template.stderr).to.include('secret.values.JWT_ACCESS_SECRET is required');
    // an existing Secret instead: renders, and the chart creates none
    const external = run(HELM, ['template', 'rel', CHART, '--set', 'secret.existingSecret=platform-prod']);
    expect(external.status, external.stderr).to.equal(0);
    expect(external.stdout).not.to.match(/^kind: Secret$/m);
    expect(external.stdout).to.include('name: platform-prod');
  });

  it('renders manifests that all validate against the Kubernetes schemas offline', () => {
    const dir = mkdtempSync(join(tmpdir(), 'helm-render-'));
    try {
      const file = join(dir, 'rendered.yaml');
      writeFileSync(file, rendered);
      const validate = run(VALIDATE, ['--strict', file]);
      expect(validate.status, `${validate.stdout}\n${validate.stderr}`).to.equal(0);
      expect(validate.stdout.match(/ passed for resource /g)?.length).to.equal(manifests.length);
      // the validator does refuse a broken manifest (a wrong type and an unknown field)
      const broken = rendered.replace(/^(\s+)replicas: 2$/m, '$1replicas: two');
      expect(broken).to.not.equal(rendered);
      writeFileSync(file, broken);
      expect(run(VALIDATE, ['--strict', '--quiet', file]).status).to.not.equal(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs each part as a Deployment with image, resources, env from the Secret and probes', () => {
    expect(byKind('Deployment').map((d) => d.metadata.name)).to.have.members(PARTS.map((p) => `rel-${p}`));
    for (const part of PARTS) {
      const pod = named('Deployment', `rel-${part}`).spec.template.spec;
      const [container] = pod.containers;
      expect(container.image, part).to.match(new RegExp(`/platform-${part}:`));
      expect(container.resources.requests.cpu, part).to.be.a('string');
      expect(container.resources.limits.memory, part).to.be.a('string');
      expect(container.envFrom.map((e: { secretRef?: { name: string } }) => e.secretRef?.name)).to.include('rel-secrets');
      expect(pod.securityContext.runAsNonRoot).to.equal(true);
      expect(container.livenessProbe, part).to.be.an('object');
      expect(container.readinessProbe, part).to.be.an('object');
    }
    for (const part of SERVICES) {
      const [container] = named('Deployment', `rel-${part}`).spec.template.spec.containers;
      expect(container.livenessProbe.httpGet.path, part).to.equal('/livez');
      expect(container.readinessProbe.httpGet.path, part).to.equal('/readyz');
    }
    // the gateway's probes are on its ops port (its public /health depends on every service)
    const [gateway] = named('Deployment', 'rel-gateway').spec.template.spec.containers;
    expect(gateway.livenessProbe.httpGet).to.deep.equal({ path: '/livez', port: 'ops' });
    expect(gateway.readinessProbe.httpGet).to.deep.equal({ path: '/readyz', port: 'ops' });
    expect(gateway.ports.map((p: { name: string }) => p.name)).to.include('ops');
    // readiness fails for SHUTDOWN_DRAIN_MS before the listener closes, within the grace period
    const env = named('ConfigMap', 'rel-env').data as Record<string, string>;
    const grace = named('Deployment', 'rel-chat').spec.template.spec.terminationGracePeriodSeconds;
    expect(Number(env.SHUTDOWN_DRAIN_MS))
      .to.be.above(0)
      .and.below(grace * 1000);
    expect(env.AUTH_URL).to.equal('http://rel-auth:3000');
  });

  it('has a Service per part, only the gateway behind the Ingress, HPAs for gateway and chat, a PDB per part', () => {
    expect(byKind('Service').map((s) => s.metadata.name)).to.have.members(PARTS.map((p) => `rel-${p}`));
    for (const service of byKind('Service')) expect(service.spec.type, service.metadata.name).to.equal('ClusterIP');
    const ingresses = byKind('Ingress');
    expect(ingresses).to.have.length(1);
    const backends = JSON.stringify(ingresses[0]?.spec.rules).match(/"name":"rel-[a-z]+"/g);
    expect(backends).to.deep.equal(['"name":"rel-gateway"']);
    expect(byKind('HorizontalPodAutoscaler').map((h) => h.spec.scaleTargetRef.name)).to.have.members(['rel-gateway', 'rel-chat']);
    expect(byKind('PodDisruptionBudget')).to.have.length(PARTS.length);
    // an autoscaled Deployment leaves replicas to its HPA
    expect(named('Deployment', 'rel-chat').spec.replicas).to.equal(undefined);
    expect(named('Deployment', 'rel-auth').spec.replicas).to.equal(2);
  });

  it('lets only the gateway (and the services that call them) reach the services, and only the parts reach the stores', () => {
    const deny = named('NetworkPolicy', 'rel-default-deny');
    expect(deny.spec.policyTypes).to.have.members(['Ingress', 'Egress']);
    expect(deny.spec.ingress).to.equal(undefined);
    const components = (policy: Manifest) =>
      (policy.spec.ingress[0].from as Array<{ podSelector?: { matchLabels: Record<string, string> } }>).map(
        (peer) => peer.podSelector?.matchLabels['app.kubernetes.io/component'],
      );
    expect(components(named('NetworkPolicy', 'rel-auth'))).to.have.members(['gateway', 'monitoring']);
    expect(components(named('NetworkPolicy', 'rel-accounting'))).to.have.members(['gateway', 'chat', 'monitoring']);
    expect(components(named('NetworkPolicy', 'rel-chat'))).to.have.members(['gateway', 'monitoring']);
    expect(components(named('NetworkPolicy', 'rel-monitoring'))).to.have.members(['gateway', 'accounting', 'chat']);
    const gatewayFrom = named('NetworkPolicy', 'rel-gateway').spec.ingress[0].from;
    expect(gatewayFrom[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name']).to.equal('ingress-nginx');
    for (const part of PARTS) {
      const egress = JSON.stringify(named('NetworkPolicy', `rel-${part}`).spec.egress);
      expect(egress, part).to.include('"cidr":"10.20.0.0/16"');
      for (const port of [27017, 5432, 6379]) expect(egress, part).to.include(`"port":${port}`);
    }
  });
});
