import type { ModelPriceView, registerModelPriceBody, ServiceClient } from '@platform/shared-types';
import type { z } from 'zod';

export type Prices = { inputPer1k: number; outputPer1k: number };

/** Accounting's price contract (shared-types internal-api.ts): accounting is the one source of prices. */
export class PricesClient {
  readonly #client: ServiceClient;

  constructor(client: ServiceClient) {
    this.#client = client;
  }

  async list(): Promise<Map<string, Prices>> {
    const { body } = await this.#client.call<{ prices: ModelPriceView[] }>('accounting', '/internal/models/prices', { timeoutMs: 5_000 });
    return new Map(body.prices.map((p) => [p.modelId, { inputPer1k: p.inputPer1k, outputPer1k: p.outputPer1k }]));
  }

  /** announces a model with its first prices; answers the price accounting holds (an earlier one wins) */
  async register(modelId: string, entry: z.input<typeof registerModelPriceBody>): Promise<Prices> {
    const { body } = await this.#client.call<ModelPriceView>('accounting', `/internal/models/prices/${encodeURIComponent(modelId)}`, {
      method: 'PUT',
      body: entry,
      timeoutMs: 5_000,
    });
    return { inputPer1k: body.inputPer1k, outputPer1k: body.outputPer1k };
  }
}
