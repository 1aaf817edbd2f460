// Preloaded by every part's `npm start` (`node --import=@platform/shared-types/telemetry src/main.ts`), before
// any app module, so the OpenTelemetry instrumentations can hook node:http, undici, express, ioredis, pg and
// mongodb as they load. Without OTEL_EXPORTER_OTLP_ENDPOINT it does nothing: no SDK, no hooks, no cost. Plain JS
// on purpose (a preload that is itself TypeScript would load the type stripper in every process).
if (process.env.OTEL_EXPORTER_OTLP_ENDPOINT) {
  const { startTelemetry } = await import('./start.mjs');
  await startTelemetry();
}
