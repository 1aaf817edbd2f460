import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../errors.ts';
import type { ApiRouter, RouteSpec } from './route.ts';

/**
 * OpenAPI 3.1 from the routes' zod schemas. A schema registered with `.meta({ id })` (zod's global registry)
 * becomes one named component under `components.schemas` and every use of it a `$ref`; one whose request
 * (input) and response (output) forms differ, through defaults or transforms, gets a second component
 * `<id>Input`. `.meta({ examples })` on a request body is shown as that body's example.
 */

type Json = Record<string, unknown>;
type Io = 'input' | 'output';
type AnySpec = RouteSpec<z.ZodType | undefined, z.ZodType | undefined, z.ZodType | undefined>;

const COMPONENT_NAME = /^[A-Za-z0-9._-]+$/;
const DEFS_REF = '#/$defs/';
const COMPONENTS_REF = '#/components/schemas/';

/** Deep copy of `value` with every `$ref` string passed through `rename`. */
function mapRefs(value: unknown, rename: (ref: string) => string): unknown {
  if (Array.isArray(value)) return value.map((item) => mapRefs(item, rename));
  if (value === null || typeof value !== 'object') return value;
  const out: Json = {};
  for (const [key, inner] of Object.entries(value)) out[key] = key === '$ref' && typeof inner === 'string' ? rename(inner) : mapRefs(inner, rename);
  return out;
}

/** Collects the named schemas met while converting, per io, and names them once all routes are seen. */
class SchemaComponents {
  private readonly defs = new Map<string, Json>(); // key: `${io}:${id}`
  private anonymous = 0;

  /** JSON Schema of `schema`, its named parts as (provisional) component refs. */
  convert(schema: z.ZodType, io: Io): Json {
    const { $schema: _dialect, $defs, ...root } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json & { $defs?: Record<string, Json> };
    const local = new Map<string, string>();
    for (const id of Object.keys($defs ?? {})) {
      // ids from .meta() are ours; anything else zod names itself (recursive schemas) per conversion
      local.set(id, isRegistered(id) ? `${io}:${id}` : `${io}:Schema${++this.anonymous}`);
    }
    const rename = (ref: string) => (ref.startsWith(DEFS_REF) ? `${COMPONENTS_REF}${local.get(ref.slice(DEFS_REF.length)) ?? ref}` : ref);
    for (const [id, def] of Object.entries($defs ?? {})) this.defs.set(local.get(id) as string, mapRefs(def, rename) as Json);
    return mapRefs(root, rename) as Json;
  }

  /** the object schema behind `json` (itself, or the component it refers to), for query and path parameters */
  resolve(json: Json): Json {
    const ref = typeof json.$ref === 'string' ? json.$ref : undefined;
    return ref?.startsWith(COMPONENTS_REF) ? (this.defs.get(ref.slice(COMPONENTS_REF.length)) ?? json) : json;
  }

  /** final component names, and `rename` for provisional refs in the rest of the document */
  finish(): { schemas: Record<string, Json>; rename: (ref: string) => string } {
    const strip = (json: Json) => JSON.stringify(mapRefs(json, (ref) => ref.replace(/\/(input|output):/, '/')));
    const names = new Map<string, string>();
    for (const key of this.defs.keys()) {
      const [io, id] = key.split(':') as [Io, string];
      if (!COMPONENT_NAME.test(id)) throw new Error(`schema id "${id}" is not a valid OpenAPI component name`);
      const output = this.defs.get(`output:${id}`);
      const input = this.defs.get(`input:${id}`);
      const same = !output || !input || strip(output) === strip(input);
      names.set(key, io === 'input' && !same ? `${id}Input` : id);
    }
    const rename = (ref: string) => {
      if (!ref.startsWith(COMPONENTS_REF)) return ref;
      const name = names.get(ref.slice(COMPONENTS_REF.length));
      return name ? `${COMPONENTS_REF}${name}` : ref;
    };
    const schemas: Record<string, Json> = {};
    for (const [key, def] of [...this.defs.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      schemas[names.get(key) as string] ??= mapRefs(def, rename) as Json;
    }
    return { schemas, rename };
  }
}

function isRegistered(id: string): boolean {
  return z.globalRegistry._idmap.has(id);
}

const problemSchema = {
  type: 'object',
  description: 'An error (RFC 9457 problem details); `code` is one of a closed list.',
  required: ['type', 'title', 'status', 'code', 'detail', 'requestId'],
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', enum: Object.keys(ERROR_CODES) },
    detail: { type: 'string' },
    requestId: { type: 'string' },
    errors: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
  },
};

const ACCESS_TEXT: Record<AnySpec['access'], string> = {
  public: 'No token needed.',
  user: 'Needs a signed-in user: `Authorization: Bearer <access token>`.',
  service: 'Service-to-service only (`X-Service-Token`).',
};

function describe(spec: AnySpec, successStatus: string, codes: Set<ErrorCode>): string {
  const what = spec.description ?? `${spec.summary.replace(/\.$/, '')}.`;
  const answers = `Answers ${successStatus}${spec.produces ? ` as \`${spec.produces}\`` : ''}.`;
  const refusals = [...codes].map((code) => `\`${code}\` (${ERROR_CODES[code].status})`);
  return [what, ACCESS_TEXT[spec.access], answers, refusals.length > 0 ? `May refuse with ${refusals.join(', ')}.` : ''].filter(Boolean).join(' ');
}

function parameters(components: SchemaComponents, schema: z.ZodType | undefined, where: 'query' | 'path'): unknown[] {
  if (!schema) return [];
  const json = components.resolve(components.convert(schema, 'input')) as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    ...(typeof property.description === 'string' ? { description: property.description } : {}),
    schema: property,
  }));
}

function requestBody(components: SchemaComponents, body: z.ZodType): Json {
  const media: Json = { schema: components.convert(body, 'input') };
  const examples = z.globalRegistry.get(body)?.examples;
  if (Array.isArray(examples) && examples.length > 0) media.example = examples[0];
  return { required: true, content: { 'application/json': media } };
}

function operationFor(components: SchemaComponents, spec: AnySpec, path: string): Json {
  const successStatus = String(spec.status ?? (spec.response || spec.produces ? 200 : 204));
  const responses: Json = {};
  if (successStatus === '204') responses['204'] = { description: 'No content' };
  else {
    const mediaType = spec.produces ?? 'application/json';
    responses[successStatus] = {
      description: 'Success',
      content: { [mediaType]: { schema: spec.response ? components.convert(spec.response, 'output') : {} } },
    };
  }
  const codes = new Set<ErrorCode>(spec.errors ?? []);
  if (spec.body || spec.query || spec.params) codes.add('VALIDATION_FAILED');
  if (spec.access !== 'public') codes.add('UNAUTHENTICATED');
  // the kit itself answers 403 when the caller is not among `callers` or lacks `action`
  if (spec.callers || spec.action) codes.add('FORBIDDEN');
  for (const code of codes) {
    responses[String(ERROR_CODES[code].status)] = {
      description: ERROR_CODES[code].title,
      content: { 'application/problem+json': { schema: { $ref: `${COMPONENTS_REF}Problem` } } },
    };
  }
  const operation: Json = {
    summary: spec.summary,
    description: describe(spec, successStatus, codes),
    operationId: `${spec.method}_${path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`,
    tags: spec.tags,
    parameters: [...parameters(components, spec.params, 'path'), ...parameters(components, spec.query, 'query')],
    responses,
    security: spec.access === 'user' ? [{ bearerAuth: [] }] : spec.access === 'service' ? [{ serviceToken: [] }] : [],
  };
  if (spec.body) operation.requestBody = requestBody(components, spec.body);
  return operation;
}

/** OpenAPI 3.1 document for the given routers; `/internal` routes are left out unless asked for. */
export function buildOpenApi(info: { title: string; version: string }, routers: ApiRouter[], options: { includeInternal?: boolean } = {}): Json {
  const components = new SchemaComponents();
  const paths: Record<string, Json> = {};
  for (const { spec } of routers.flatMap((r) => r.operations)) {
    if (spec.access === 'service' && !options.includeInternal) continue;
    const path = spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    paths[path] ??= {};
    (paths[path] as Json)[spec.method] = operationFor(components, spec, path);
  }
  const { schemas, rename } = components.finish();
  if (schemas.Problem) throw new Error('schema id "Problem" is reserved for the error body');
  return {
    openapi: '3.1.0',
    info,
    paths: mapRefs(paths, rename),
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        ...(options.includeInternal ? { serviceToken: { type: 'apiKey', in: 'header', name: 'X-Service-Token' } } : {}),
      },
      schemas: { Problem: problemSchema, ...schemas },
    },
  };
}
