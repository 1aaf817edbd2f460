import { ROLES, relationshipCheckQuery, relationshipCheckResponse } from '@platform/shared-types';
import { ApiRouter, internalRoute } from '@platform/shared-types/express';
import { z } from 'zod';
import type { RelationshipService } from './relationships-service.ts';

const userId = z.string().trim().min(1).max(64);

export const relationshipSchema = z
  .object({
    id: z.uuid(),
    supervisorId: z.string(),
    studentId: z.string(),
    active: z.boolean(),
    createdBy: z.string(),
    createdAt: z.string(),
    since: z.string(),
    deactivatedAt: z.string().nullable(),
    deactivatedReason: z.string().nullable(),
  })
  .meta({ id: 'Relationship' });
const userSummary = z.object({ id: z.string(), username: z.string(), email: z.string(), role: z.enum(ROLES), status: z.string() }).nullable();

export const pageQuery = {
  page: z.coerce.number().int().min(1).max(100_000).default(1),
  limit: z.coerce.number().int().min(1).max(100).default(20),
};

export function relationshipsRouter(service: RelationshipService): ApiRouter {
  return new ApiRouter()
    .route(
      {
        method: 'post',
        path: '/api/monitoring/relationships',
        summary: 'Create a supervisor-student relationship (admin)',
        tags: ['relationships'],
        access: 'user',
        body: z
          .object({ supervisorId: userId, studentId: userId })
          .strict()
          .meta({ id: 'CreateRelationshipRequest', examples: [{ supervisorId: '665f1c2e9b1d8a0012345678', studentId: '665f1c2e9b1d8a0087654321' }] }),
        status: 201,
        response: z.object({ relationship: relationshipSchema, reactivated: z.boolean() }),
        errors: ['FORBIDDEN', 'NOT_FOUND', 'CONFLICT', 'UPSTREAM_UNAVAILABLE'],
      },
      ({ actor, body, userToken }) => service.create(actor, body, userToken),
    )
    .route(
      {
        method: 'get',
        path: '/api/monitoring/relationships',
        summary: 'List relationships (admin: any, filtered by supervisor or student; supervisor: its own), paged',
        tags: ['relationships'],
        access: 'user',
        query: z
          .object({
            supervisorId: userId.optional(),
            studentId: userId.optional(),
            active: z
              .enum(['true', 'false'])
              .transform((v) => v === 'true')
              .optional(),
            ...pageQuery,
          })
          .strict(),
        response: z.object({
          relationships: z.array(relationshipSchema.extend({ supervisor: userSummary, student: userSummary })),
          page: z.number(),
          limit: z.number(),
          total: z.number(),
          usersKnown: z.boolean(),
        }),
        errors: ['FORBIDDEN'],
      },
      ({ actor, query, userToken }) =>
        service.list(
          actor,
          { supervisorId: query.supervisorId, studentId: query.studentId, active: query.active },
          { page: query.page, limit: query.limit },
          userToken,
        ),
    )
    .route(
      {
        method: 'delete',
        path: '/api/monitoring/relationships/:id',
        summary: 'Delete a relationship (admin)',
        tags: ['relationships'],
        access: 'user',
        params: z.object({ id: z.string().min(1).max(64) }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      async ({ actor, params }) => {
        await service.remove(actor, params.id);
      },
    )
    .route(
      {
        method: 'get',
        path: '/internal/relationships/check',
        summary: 'Whether a supervisor actively supervises a student (service-only)',
        ...internalRoute(),
        query: relationshipCheckQuery,
        response: relationshipCheckResponse,
      },
      ({ query }) => service.check(query),
    );
}
