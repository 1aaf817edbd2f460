import { ApiError, internalRepliesResponse, type ServiceClient, type StoredReply } from '@platform/shared-types';

/** The metered replies chat stored in [from, to) (all pages). */
export type StoredReplies = (window: { from: Date; to: Date }) => Promise<StoredReply[]>;

/** Asks chat (GET /internal/replies, service token per DESIGN 4), page by page. UPSTREAM_UNAVAILABLE when chat is down. */
export function chatStoredReplies(client: ServiceClient, pageSize = 500): StoredReplies {
  return async ({ from, to }) => {
    const replies: StoredReply[] = [];
    let after: string | undefined;
    for (;;) {
      const { body } = await client.call('chat', '/internal/replies', {
        query: { from: from.toISOString(), to: to.toISOString(), after, limit: pageSize },
        timeoutMs: 30_000,
      });
      const parsed = internalRepliesResponse.safeParse(body);
      if (!parsed.success) throw new ApiError('UPSTREAM_UNAVAILABLE', 'chat answered an unexpected reply list', { status: 502 });
      replies.push(...parsed.data.replies);
      if (!parsed.data.next) return replies;
      after = parsed.data.next;
    }
  };
}
