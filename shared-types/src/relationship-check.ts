import { relationshipCheckResponse } from './internal-api.ts';
import type { ServiceClient } from './service-client.ts';

/** Does `supervisorId` supervise `studentId`? Asked on the user's behalf when a user token is given. */
export type SupervisorCheck = (supervisorId: string, studentId: string, userToken?: string) => Promise<boolean>;

/**
 * Asks monitoring (GET /internal/relationships/check). The answer is validated against the shared schema: one
 * that does not match is UPSTREAM_UNAVAILABLE, never read as a yes or a no.
 */
export function monitoringSupervisorCheck(client: ServiceClient): SupervisorCheck {
  return async (supervisorId, studentId, userToken) => {
    const { body } = await client.call('monitoring', '/internal/relationships/check', {
      query: { supervisorId, studentId },
      userToken,
      schema: relationshipCheckResponse,
    });
    return body.supervises;
  };
}
