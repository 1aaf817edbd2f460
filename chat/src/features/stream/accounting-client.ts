import type { abortReservationBody, finalizeReservationBody, initializeReservationBody, ReservationResponse, ServiceClient } from '@platform/shared-types';
import type { z } from 'zod';

export type InitializeBody = z.input<typeof initializeReservationBody>;
export type FinalizeBody = z.input<typeof finalizeReservationBody>;
export type AbortBody = z.input<typeof abortReservationBody>;

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

  /** charges real usage; works after the user's token expired; idempotent on reservationId */
  async finalize(body: FinalizeBody): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/finalize', { body })).body;
  }

  async abort(body: AbortBody): Promise<ReservationResponse> {
    return (await this.#client.call<ReservationResponse>('accounting', '/internal/streaming-sessions/abort', { body })).body;
  }
}
