import type { ModelEntry } from '@platform/shared-types';
import type { Knex } from 'knex';
import { iso } from '../../db.ts';

export interface PriceView {
  modelId: string;
  displayName: string;
  inputPer1k: number;
  outputPer1k: number;
  updatedBy: string | null;
  updatedAt: string;
}

interface PriceRow {
  model_id: string;
  display_name: string;
  input_per_1k: number;
  output_per_1k: number;
  updated_by: string | null;
  updated_at: Date;
}

const view = (row: PriceRow): PriceView => ({
  modelId: row.model_id,
  displayName: row.display_name,
  inputPer1k: row.input_per_1k,
  outputPer1k: row.output_per_1k,
  updatedBy: row.updated_by,
  updatedAt: iso(row.updated_at) as string,
});

/** Model prices (credits per 1,000 tokens; accounting is their one source, DESIGN 8). Every function runs on `knex`, or inside `trx` when one is given. */
export function pricesDal(knex: Knex) {
  return {
    /** Adds every catalog model that has no price yet; prices an admin changed are kept. */
    async seedPrices(catalog: ModelEntry[], trx?: Knex.Transaction): Promise<void> {
      const db = trx ?? knex;
      if (catalog.length === 0) return;
      await db('model_prices')
        .insert(catalog.map((m) => ({ model_id: m.id, display_name: m.displayName, input_per_1k: m.prices.inputPer1k, output_per_1k: m.prices.outputPer1k })))
        .onConflict('model_id')
        .ignore();
    },

    async listPrices(trx?: Knex.Transaction): Promise<PriceView[]> {
      const db = trx ?? knex;
      return (await db<PriceRow>('model_prices').orderBy('model_id')).map(view);
    },

    async findPrice(modelId: string, trx?: Knex.Transaction): Promise<PriceView | undefined> {
      const db = trx ?? knex;
      const row = await db<PriceRow>('model_prices').where({ model_id: modelId }).first();
      return row ? view(row) : undefined;
    },

    /** Changes a model's prices; open reservations keep the prices they were made at. */
    async updatePrice(
      modelId: string,
      prices: { inputPer1k: number; outputPer1k: number },
      by: string,
      trx?: Knex.Transaction,
    ): Promise<PriceView | undefined> {
      const db = trx ?? knex;
      const [row] = await db<PriceRow>('model_prices')
        .where({ model_id: modelId })
        .update({ input_per_1k: prices.inputPer1k, output_per_1k: prices.outputPer1k, updated_by: by, updated_at: db.fn.now() as unknown as Date })
        .returning('*');
      return row ? view(row as PriceRow) : undefined;
    },

    /** Adds a price for a model chat learned at runtime; a price already held is kept. Answers the price in force. */
    async registerPrice(modelId: string, entry: { displayName: string; inputPer1k: number; outputPer1k: number }, trx?: Knex.Transaction): Promise<PriceView> {
      const db = trx ?? knex;
      await db('model_prices')
        .insert({ model_id: modelId, display_name: entry.displayName, input_per_1k: entry.inputPer1k, output_per_1k: entry.outputPer1k })
        .onConflict('model_id')
        .ignore();
      const row = await db<PriceRow>('model_prices').where({ model_id: modelId }).first();
      return view(row as PriceRow);
    },
  };
}

export type PricesDal = ReturnType<typeof pricesDal>;
