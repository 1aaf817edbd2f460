import express, { type Request, type Response } from 'express';
import type { z } from 'zod';
import { type Action, can } from '../authz.ts';
import type { Actor } from '../claims.ts';
import { ApiError, type ErrorCode } from '../errors.ts';
import { bearerToken } from '../tokens.ts';
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
  /** one line, shown in lists */
  summary: string;
  /** what the operation does and when it refuses; generated from access and errors when not given */
  description?: string;
  access: Access;
  /** on 'service' routes: the only services that may call it (a route any service may call leaves it out) */
  callers?: readonly string[];
  /** an action of the authorization table the actor must hold on no particular resource, checked before the input is parsed */
  action?: Action;
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
  /**
   * error codes this route may answer, for the docs; those the kit itself answers need not be listed:
   * VALIDATION_FAILED with an input schema, UNAUTHENTICATED off 'public', FORBIDDEN with `callers` or `action`
   */
  errors?: ErrorCode[];
}

/**
 * The spec fields of a service-only route (DESIGN 4: `/internal`, service token): spread into the spec, with the
 * services that may call it when not every service may.
 */
export function internalRoute(callers?: readonly string[]): { access: 'service'; tags: string[]; callers?: readonly string[] } {
  return { access: 'service', tags: ['internal'], ...(callers ? { callers } : {}) };
}

export interface RouteInput<B extends Schema, Q extends Schema, P extends Schema, A extends Access> {
  body: Out<B>;
  query: Out<Q>;
  params: Out<P>;
  /** the verified user; always present on 'user' routes */
  actor: A extends 'user' ? Actor : Actor | undefined;
  /**
   * The caller's access token, for service-to-service calls made on the user's behalf (DESIGN 4): the one verified
   * by service auth on /internal routes, else the bearer token the gateway forwarded unchanged.
   */
  userToken: string | undefined;
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
      if (spec.callers && !spec.callers.includes(req.caller ?? '')) throw new ApiError('FORBIDDEN', `Only ${spec.callers.join(', ')} may call this route`);
      if (spec.action && !(req.actor && can(req.actor, spec.action))) throw new ApiError('FORBIDDEN', `Not allowed to ${spec.action}`);
      const input = {
        body: spec.body ? parsePart(spec.body, req.body ?? {}, 'body') : undefined,
        query: spec.query ? parsePart(spec.query, req.query, 'query') : undefined,
        params: spec.params ? parsePart(spec.params, req.params, 'params') : undefined,
        actor: req.actor,
        userToken: req.userToken ?? bearerToken(req.headers.authorization),
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

export { buildOpenApi } from './openapi.ts';
