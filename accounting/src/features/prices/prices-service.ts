import { ApiError, type ModelPriceView } from '@platform/shared-types';
import type { PricesDal, PriceView } from './prices-dal.ts';

/** Model prices: what they are, an admin's change, and the first prices of a model chat added at runtime. */
export function pricesService(deps: { prices: PricesDal }) {
  const { prices } = deps;
  const internalView = ({ modelId, inputPer1k, outputPer1k }: PriceView): ModelPriceView => ({ modelId, inputPer1k, outputPer1k });
  return {
    list: (): Promise<PriceView[]> => prices.listPrices(),

    /** NOT_FOUND for a model accounting holds no price of. */
    async find(modelId: string): Promise<PriceView> {
      const price = await prices.findPrice(modelId);
      if (!price) throw new ApiError('NOT_FOUND', `Unknown model ${modelId}`);
      return price;
    },

    /** Applies to new reservations only: open ones keep the prices they were made at. */
    async update(modelId: string, change: { inputPer1k: number; outputPer1k: number }, by: string): Promise<PriceView> {
      const price = await prices.updatePrice(modelId, change, by);
      if (!price) throw new ApiError('NOT_FOUND', `Unknown model ${modelId}`);
      return price;
    },

    /** Every model's prices as chat reads them. */
    listForServices: async (): Promise<ModelPriceView[]> => (await prices.listPrices()).map(internalView),

    /** A price already held is kept; answers the price in force. */
    register: async (modelId: string, entry: { displayName: string; inputPer1k: number; outputPer1k: number }): Promise<ModelPriceView> =>
      internalView(await prices.registerPrice(modelId, entry)),
  };
}

export type PricesService = ReturnType<typeof pricesService>;
