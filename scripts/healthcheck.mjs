// The image's HEALTHCHECK (Dockerfile): GET /readyz of the part running in this container, exit 0 when it
// answers 2xx. A service answers it on its public port (PORT), after checking its stores; the gateway on its
// private ops listener (OPS_PORT), because its public /health asks every service and would mark every gateway
// unhealthy when one service is down. Plain JS: run every few seconds, it should not load the type stripper.
// The defaults are the parts' config defaults (e2e/test/compose.test.ts compares them).
export const DEFAULT_PORTS = { gateway: 9464, auth: 3000, accounting: 3001, chat: 3002, monitoring: 3003 };

export function readinessUrl(env) {
  const part = env.PART;
  if (!Object.hasOwn(DEFAULT_PORTS, part)) throw new Error(`PART must be one of ${Object.keys(DEFAULT_PORTS).join(', ')}, not ${part}`);
  const port = (part === 'gateway' ? env.OPS_PORT : env.PORT) || DEFAULT_PORTS[part];
  return `http://127.0.0.1:${port}/readyz`;
}

if (import.meta.main) {
  fetch(readinessUrl(process.env), { signal: AbortSignal.timeout(4_000) }).then(
    (response) => process.exit(response.ok ? 0 : 1),
    () => process.exit(1),
  );
}
