import type { Migration } from '@platform/shared-types/stores/postgres';
import { accounts001 } from './001-accounts.ts';
import { credits002 } from './002-credits.ts';
import { moneyFunctions003 } from './003-money-functions.ts';
import { moneyBatch004 } from './004-money-batch.ts';
import { lateCharges005 } from './005-late-charges.ts';
import { apiKeyLimits006 } from './006-api-key-limits.ts';
import { apiKeyLateCharges007 } from './007-api-key-late-charges.ts';

/** Ordered; append new migrations, never edit a released one. */
export const migrations: Migration[] = [accounts001, credits002, moneyFunctions003, moneyBatch004, lateCharges005, apiKeyLimits006, apiKeyLateCharges007];
