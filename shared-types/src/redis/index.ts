export * from './mutex.ts';
export * from './stream-consumer.ts';
