export * from './mutex.ts';
