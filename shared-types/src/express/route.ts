import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { Actor } from '../claims.ts';
import { ApiError, ERROR_CODES, type ErrorCode } from '../errors.ts';
import './types.ts';

/** Who may call a route: anyone, a signed-in user (gateway identity), or another service (/internal). */
export type Access = 'public' | 'user' | 'service';
type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type Schema = z.ZodType | undefined;
type Out<S extends Schema> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteSpec<B extends Schema, Q extends Schema, P extends Schema> {
  method: Method;
  /** express path; documented with {param} placeholders */
  path: string;
  summary: string;
  access: Access;
  tags?: string[];
  body?: B;
  query?: Q;
  params?: P;
  /** success status (default 200 with a body, 204 without) */
  status?: number;
  /** documented success body */
  response?: z.ZodType;
  /** documented success media type when not JSON (e.g. text/event-stream) */
  produces?: string;
  /** error codes this route may answer, for the docs */
  errors?: ErrorCode[];
}

export interface RouteInput<B extends Schema, Q extends Schema, P extends Schema, A extends Access> {
  body: Out<B>;
  query: Out<Q>;
  params: Out<P>;
  /** the verified user; always present on 'user' routes */
  actor: A extends 'user' ? Actor : Actor | undefined;
  req: Request;
  res: Response;
}

/**
 * The one routing rule of every service and the gateway (DESIGN 7): a path matches only as spelled. Express
 * defaults to ignoring case and a trailing slash, which let `/api/auth/LOGIN` reach the login handler
 * through a gateway pipeline without the login limits.
 */
export const ROUTING = { caseSensitive: true, strict: true } as const;

interface Operation {
  spec: RouteSpec<Schema, Schema, Schema>;
}

/** NUL never belongs in our API's text, and stores refuse or mangle it: reject it in any key or string. */
function findNul(value: unknown, path: string[], depth = 0): string[] | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (value === null || typeof value !== 'object' || depth > 32) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    if (key.includes('\u0000')) return [...path, key];
    const found = findNul(inner, [...path, key], depth + 1);
    if (found) return found;
  }
  return undefined;
}

function parsePart(schema: z.ZodType, value: unknown, part: string): unknown {
  const nul = findNul(value, [part]);
  if (nul)
    throw new ApiError('VALIDATION_FAILED', `Invalid request ${part}`, { errors: [{ path: nul.join('.'), message: 'must not contain NUL characters' }] });
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({ path: [part, ...issue.path.map(String)].join('.'), message: issue.message }));
  throw new ApiError('VALIDATION_FAILED', `Invalid request ${part}`, { errors });
}

/**
 * Registers routes whose zod schemas both validate requests and generate the OpenAPI document,
 * so the docs cannot drift from what the service accepts.
 */
export class ApiRouter {
  /** case-sensitive and strict (`/x/` is not `/x`): the gateway matches paths the same way (DESIGN 7) */
  readonly router = express.Router(ROUTING);
  readonly operations: Operation[] = [];

  route<B extends Schema = undefined, Q extends Schema = undefined, P extends Schema = undefined, A extends Access = Access>(
    spec: RouteSpec<B, Q, P> & { access: A },
    handler: (input: RouteInput<B, Q, P, A>) => unknown,
  ): this {
    this.operations.push({ spec: spec as RouteSpec<Schema, Schema, Schema> });
    this.router[spec.method](spec.path, async (req: Request, res: Response) => {
      if (spec.access === 'user' && !req.actor) throw req.authError ?? new ApiError('UNAUTHENTICATED', 'Sign in first');
      if (spec.access === 'service' && !req.caller) throw new ApiError('UNAUTHENTICATED', 'Service token required');
      const input = {
        body: spec.body ? parsePart(spec.body, req.body ?? {}, 'body') : undefined,
        query: spec.query ? parsePart(spec.query, req.query, 'query') : undefined,
        params: spec.params ? parsePart(spec.params, req.params, 'params') : undefined,
        actor: req.actor,
        req,
        res,
      } as RouteInput<B, Q, P, A>;
      const result = await handler(input);
      if (res.headersSent || res.writableEnded) return;
      if (result === undefined) res.status(spec.status ?? 204).end();
      else res.status(spec.status ?? 200).json(result);
    });
    return this;
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
}

function parameters(schema: Schema, where: 'query' | 'path'): unknown[] {
  if (!schema) return [];
  const json = jsonSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required ?? []).includes(name),
    schema: property,
  }));
}

const problemSchema = {
  type: 'object',
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

/** OpenAPI 3.1 document for the given routers; `/internal` routes are left out unless asked for. */
export function buildOpenApi(
  info: { title: string; version: string },
  routers: ApiRouter[],
  options: { includeInternal?: boolean } = {},
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { spec } of routers.flatMap((r) => r.operations)) {
    if (spec.access === 'service' && !options.includeInternal) continue;
    const path = spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const successStatus = String(spec.status ?? (spec.response || spec.produces ? 200 : 204));
    const responses: Record<string, unknown> = {};
    if (successStatus === '204') responses['204'] = { description: 'No content' };
    else {
      const mediaType = spec.produces ?? 'application/json';
      responses[successStatus] = {
        description: 'Success',
        content: { [mediaType]: { schema: spec.response ? jsonSchema(spec.response, 'output') : {} } },
      };
    }
    const codes = new Set<ErrorCode>(spec.errors ?? []);
    if (spec.body || spec.query || spec.params) codes.add('VALIDATION_FAILED');
    if (spec.access !== 'public') codes.add('UNAUTHENTICATED');
    for (const code of codes) {
      responses[String(ERROR_CODES[code].status)] = {
        description: ERROR_CODES[code].title,
        content: { 'application/problem+json': { schema: problemSchema } },
      };
    }
    const operation: Record<string, unknown> = {
      summary: spec.summary,
      operationId: `${spec.method}_${path.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`,
      tags: spec.tags,
      parameters: [...parameters(spec.params, 'path'), ...parameters(spec.query, 'query')],
      responses,
    };
    if (spec.access === 'user') operation.security = [{ bearerAuth: [] }];
    if (spec.access === 'service') operation.security = [{ serviceToken: [] }];
    if (spec.body) operation.requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(spec.body, 'input') } } };
    paths[path] ??= {};
    (paths[path] as Record<string, unknown>)[spec.method] = operation;
  }
  return {
    openapi: '3.1.0',
    info,
    paths,
    components: {
      securitySchemes: {
        bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        serviceToken: { type: 'apiKey', in: 'header', name: 'X-Service-Token' },
      },
      schemas: { Problem: problemSchema },
    },
  };
}
