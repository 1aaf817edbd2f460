export * from './app.ts';
export * from './middleware.ts';
export * from './route.ts';
export * from './server.ts';
export type {} from './types.ts';
