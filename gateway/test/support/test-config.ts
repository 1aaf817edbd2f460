/** The head every test routing file starts with: the listener on the port the harness gives, Redis under `prefix`. */
export function yamlHead(prefix: string): string {
  return `
http:
  port: \${PORT}
  host: 127.0.0.1
redis: { failMode: open, keyPrefix: "${prefix}", commandTimeoutMs: 250 }`;
}

/** A small routing file for tests: every pipeline the suites need, with limits they can reach. */
export function testYaml(options: {
  prefix: string;
  failMode?: 'open' | 'closed';
  userLimit?: number;
  debounceMs?: number;
  extraEndpoints?: string;
  extraPipelines?: string;
  /** more lines of the http section (deadlines, connection caps), each indented by two spaces */
  http?: string;
}): string {
  return `
http:
  port: \${PORT}
  host: 127.0.0.1
${options.http ?? ''}
redis:
  failMode: ${options.failMode ?? 'open'}
  keyPrefix: "${options.prefix}"
  commandTimeoutMs: 250
reload:
  debounceMs: ${options.debounceMs ?? 100}
apiEndpoints:
  health: { paths: /health }
  docs: { paths: /api/docs }
  login: { paths: /api/auth/login, methods: POST }
  public: { paths: [/api/auth/signup, /monitoring, /monitoring/*] }
  stream: { paths: /api/chat/sessions/:id/stream, methods: POST }
  small-body: { paths: /api/small }
  open-proxy: { paths: /api/open/* }
  limited: { paths: /api/limited/* }
  api: { paths: [/api/auth/*, /api/credits/*, /api/chat/*, /api/monitoring/*] }
${options.extraEndpoints ?? ''}
serviceEndpoints:
  echo:
    url: \${AUTH_URL}
    headersTimeoutMs: 600
  down:
    url: http://127.0.0.1:1
policies: [cors, verify-token, revocation, rate-limit, identity-headers, proxy, health, docs]
pipelines:
${options.extraPipelines ?? ''}
  health:
    apiEndpoints: [health]
    policies: [{ health: }]
  docs:
    apiEndpoints: [docs]
    policies: [{ docs: }]
  login:
    apiEndpoints: [login]
    policies:
      - rate-limit:
          - action: { name: login-id, limit: 3, windowSeconds: 60, by: ip-body, bodyFields: [email, username] }
          - action: { name: login-ip, limit: 5, windowSeconds: 60, by: ip }
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: echo } }]
  public:
    apiEndpoints: [public]
    policies:
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: echo } }]
  stream:
    apiEndpoints: [stream]
    policies:
      - verify-token:
      - revocation:
      - rate-limit:
          - action: { name: streams, type: concurrency, limit: 1, by: user }
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: echo } }]
  small-body:
    apiEndpoints: [small-body]
    policies:
      - proxy: [{ action: { serviceEndpoint: echo, bodyLimit: 1kb } }]
  open-proxy:
    apiEndpoints: [open-proxy]
    policies:
      - identity-headers:
      - proxy:
          - condition: { name: pathExact, path: /api/open/down }
            action: { serviceEndpoint: down }
          - action: { serviceEndpoint: echo }
  limited:
    apiEndpoints: [limited]
    policies:
      - verify-token:
      - revocation:
      - rate-limit:
          - action: { name: user, limit: ${options.userLimit ?? 10}, windowSeconds: 60, by: user }
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: echo } }]
  api:
    apiEndpoints: [api]
    policies:
      - cors: [{ action: { origin: 'https://app.example.test', credentials: true } }]
      - verify-token:
      - revocation:
      - rate-limit:
          - action: { name: api, limit: 1000, windowSeconds: 60, by: user }
      - identity-headers:
      - proxy: [{ action: { serviceEndpoint: echo } }]
`;
}
