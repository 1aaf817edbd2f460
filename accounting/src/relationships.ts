import { ApiError, relationshipCheckResponse, type ServiceClient } from '@platform/shared-types';

export type SupervisorCheck = (supervisorId: string, studentId: string, userToken?: string) => Promise<boolean>;

/** Asks monitoring whether a supervisor supervises a student (GET /internal/relationships/check). */
export function monitoringSupervisorCheck(client: ServiceClient): SupervisorCheck {
  return async (supervisorId, studentId, userToken) => {
    const { body } = await client.call('monitoring', '/internal/relationships/check', { query: { supervisorId, studentId }, userToken });
    const parsed = relationshipCheckResponse.safeParse(body);
    if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', 'monitoring answered an unexpected relationship check', { status: 502 });
    return parsed.data.supervises;
  };
}
