import type { Migration } from '@platform/shared-types/stores';
import { accounts001 } from './001-accounts.ts';

/** Ordered; append new migrations, never edit a released one. */
export const migrations: Migration[] = [accounts001];
