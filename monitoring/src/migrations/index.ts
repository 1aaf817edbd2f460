import type { Migration } from '@platform/shared-types/stores/postgres';
import { relationships001 } from './001-relationships.ts';
import { processedUserEvents002 } from './002-processed-user-events.ts';

/** Ordered; append new migrations, never edit a released one. */
export const migrations: Migration[] = [relationships001, processedUserEvents002];
