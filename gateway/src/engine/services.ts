import { Pool } from 'undici';
import type { ServiceEndpointConfig } from './gateway-config.ts';

export interface ServiceRuntime {
  name: string;
  url: string;
  config: ServiceEndpointConfig;
  pool: Pool;
}

/**
 * One undici pool per service endpoint. Reloads reuse a pool whose settings did not change, and close
 * (gracefully: in-flight requests finish) the pools no config refers to any more.
 */
export class ServicePools {
  readonly #pools = new Map<string, Pool>();

  #key(config: ServiceEndpointConfig): string {
    return JSON.stringify([new URL(config.url).origin, config.connections, config.connectTimeoutMs, config.headersTimeoutMs]);
  }

  resolve(services: Record<string, ServiceEndpointConfig>): Map<string, ServiceRuntime> {
    const out = new Map<string, ServiceRuntime>();
    for (const [name, config] of Object.entries(services)) {
      const key = this.#key(config);
      let pool = this.#pools.get(key);
      if (!pool) {
        pool = new Pool(new URL(config.url).origin, {
          connections: config.connections,
          pipelining: 1,
          keepAliveTimeout: 30_000,
          connectTimeout: config.connectTimeoutMs,
          headersTimeout: config.headersTimeoutMs,
          // no idle cut-off: event streams stay quiet for as long as they like
          bodyTimeout: 0,
        });
        this.#pools.set(key, pool);
      }
      out.set(name, { name, url: new URL(config.url).origin, config, pool });
    }
    return out;
  }

  /** Closes the pools the given runtimes do not use. */
  retain(inUse: Iterable<ServiceRuntime>): void {
    const keep = new Set<Pool>([...inUse].map((s) => s.pool));
    for (const [key, pool] of this.#pools) {
      if (keep.has(pool)) continue;
      this.#pools.delete(key);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy().catch(() => undefined)));
  }
}
