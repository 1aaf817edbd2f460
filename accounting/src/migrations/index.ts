import type { Migration } from '@platform/shared-types/stores';
import { accounts001 } from './001-accounts.ts';
import { credits002 } from './002-credits.ts';
import { moneyFunctions003 } from './003-money-functions.ts';
import { moneyBatch004 } from './004-money-batch.ts';

/** Ordered; append new migrations, never edit a released one. */
export const migrations: Migration[] = [accounts001, credits002, moneyFunctions003, moneyBatch004];
