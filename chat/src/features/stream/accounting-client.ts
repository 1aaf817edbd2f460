import type {
  abortReservationBody,
  finalizeReservationBody,
  initializeReservationBody,
  ReservationResponse,
  renewReservationBody,
  ServiceClient,
} from '@platform/shared-types';
import type { z } from 'zod';

export type InitializeBody = z.input<typeof initializeReservationBody>;
export type FinalizeBody = z.input<typeof finalizeReservationBody>;
export type AbortBody = z.input<typeof abortReservationBody>;
export type RenewBody = z.input<typeof renewReservationBody>;

/** Accounting's reservation contract (shared-types internal-api.ts). */
export class AccountingClient {
  readonly #client: ServiceClient;

  constructor(client: ServiceClient) {
    this.#client = client;
  }

  /** reserves the worst case on the user's behalf (their token proves who pays) */
  async initialize(body: InitializeBody, userToken: string | undefined): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/initialize', { body, userToken })).body;
  }

  /** keeps a running stream's reservation alive (the sweeper expires only reservations nobody renews) */
  async renew(body: RenewBody): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/renew', { body })).body;
  }

  /** charges real usage; works after the user's token expired; idempotent on reservationId */
  async finalize(body: FinalizeBody): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/finalize', { body })).body;
  }

  async abort(body: AbortBody): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/abort', { body })).body;
  }
}
