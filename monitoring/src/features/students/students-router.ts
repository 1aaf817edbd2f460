import { ApiRouter } from '@platform/shared-types/express';
import { z } from 'zod';
import { pageQuery } from '../relationships/relationships-router.ts';
import type { StudentsService } from './students-service.ts';

const userId = z.string().trim().min(1).max(64);
const source = z.enum(['ok', 'unavailable']);
const sources = z.object({ auth: source, accounting: source });
const student = z.object({
  id: z.string(),
  relationshipId: z.string(),
  since: z.string(),
  username: z.string().nullable(),
  email: z.string().nullable(),
  displayName: z.string().nullable(),
  status: z.string().nullable(),
  balance: z.object({ available: z.number(), reserved: z.number() }).nullable().describe('null when accounting is unavailable'),
  activeStreams: z
    .array(
      z.object({
        sessionId: z.string(),
        reservationId: z.string(),
        modelId: z.string(),
        reservedCredits: z.number(),
        startedAt: z.string(),
        timeToFirstTokenMs: z.number().int().nullable().describe("chat's time to first token of the running stream; null before it (or unknown)"),
      }),
    )
    .nullable()
    .describe('null when accounting is unavailable'),
});

export function studentsRouter(service: StudentsService): ApiRouter {
  return new ApiRouter()
    .route(
      {
        method: 'get',
        path: '/api/supervised-students',
        summary: "The supervisor's students with balances and running streams (admin: any supervisor's via ?supervisorId=)",
        tags: ['students'],
        access: 'user',
        query: z.object({ supervisorId: userId.optional(), ...pageQuery, limit: z.coerce.number().int().min(1).max(200).default(50) }).strict(),
        response: z.object({ supervisorId: z.string(), students: z.array(student), page: z.number(), limit: z.number(), total: z.number(), sources }),
        errors: ['FORBIDDEN'],
      },
      ({ actor, query, userToken }) => service.list(actor, query, userToken),
    )
    .route(
      {
        method: 'get',
        path: '/api/supervised-students/:studentId',
        summary: 'One supervised student with balance and running streams',
        tags: ['students'],
        access: 'user',
        params: z.object({ studentId: userId }),
        query: z.object({ supervisorId: userId.optional() }).strict(),
        response: z.object({ supervisorId: z.string(), student, sources }),
        errors: ['FORBIDDEN', 'NOT_FOUND'],
      },
      ({ actor, params, query, userToken }) => service.one(actor, params.studentId, query.supervisorId, userToken),
    );
}
