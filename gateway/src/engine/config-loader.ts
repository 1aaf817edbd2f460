import { createHash } from 'node:crypto';
import { type FSWatcher, watch } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '@platform/shared-types';
import { type GatewayConfig, parseGatewayConfig } from './gateway-config.ts';

export interface LoaderStatus {
  /** how many configs have been applied (1 after start) */
  version: number;
  /** sha256 of the file text now in force */
  hash: string;
  /** why the last attempt was refused, when it was */
  lastError?: string[];
  attempts: number;
}

/**
 * Loads the routing file, then follows it: a watch on its directory (so rename-over edits are seen too),
 * a debounce, then read -> parse -> validate -> compile -> swap. An invalid version keeps the last good one
 * and logs why. One reload runs at a time; edits during a reload schedule one more, so the last content wins.
 */
export class ConfigLoader<R> {
  readonly #file: string;
  readonly #env: Record<string, string | undefined>;
  readonly #build: (config: GatewayConfig) => { ok: true; runtime: R } | { ok: false; issues: string[] };
  readonly #apply: (runtime: R, config: GatewayConfig) => void;
  readonly #logger: Logger;
  readonly #onResult: (result: 'applied' | 'unchanged' | 'invalid') => void;
  #debounceMs = 150;
  #watcher?: FSWatcher;
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #again = false;
  #closed = false;
  #status: LoaderStatus = { version: 0, hash: '', attempts: 0 };

  constructor(options: {
    file: string;
    env: Record<string, string | undefined>;
    build: (config: GatewayConfig) => { ok: true; runtime: R } | { ok: false; issues: string[] };
    apply: (runtime: R, config: GatewayConfig) => void;
    logger: Logger;
    onResult?: (result: 'applied' | 'unchanged' | 'invalid') => void;
  }) {
    this.#file = options.file;
    this.#env = options.env;
    this.#build = options.build;
    this.#apply = options.apply;
    this.#logger = options.logger;
    this.#onResult = options.onResult ?? (() => undefined);
  }

  get status(): Readonly<LoaderStatus> {
    return this.#status;
  }

  /** The first load: an invalid file stops the start (there is no last good config yet). */
  async start(): Promise<void> {
    const text = await readFile(this.#file, 'utf8');
    const outcome = this.#consider(text);
    if (outcome !== 'applied') throw new Error(`invalid gateway config ${this.#file}:\n  - ${(this.#status.lastError ?? []).join('\n  - ')}`);
    this.#watch();
  }

  #watch(): void {
    if (this.#closed) return;
    const name = basename(this.#file);
    try {
      this.#watcher = watch(dirname(this.#file), { persistent: false }, (_event, filename) => {
        if (filename === null || filename.toString() === name) this.schedule();
      });
      this.#watcher.on('error', (error) => {
        this.#logger.warn({ err: { message: error.message } }, 'config watcher failed; re-watching');
        this.#watcher?.close();
        setTimeout(() => this.#watch(), 200).unref();
      });
    } catch (error) {
      this.#logger.warn({ err: { message: (error as Error).message } }, 'cannot watch the config file; SIGHUP still reloads');
    }
  }

  /** Debounced reload (file events, SIGHUP). */
  schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.reload(), this.#debounceMs);
    this.#timer.unref();
  }

  /** Reloads now; resolves when this reload (and any it caused) settled. */
  reload(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        do {
          this.#again = false;
          let text: string;
          try {
            text = await readFile(this.#file, 'utf8');
          } catch (error) {
            this.#refuse([`cannot read ${this.#file}: ${(error as Error).message}`]);
            continue;
          }
          this.#consider(text);
        } while (this.#again && !this.#closed);
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  #consider(text: string): 'applied' | 'unchanged' | 'invalid' {
    this.#status.attempts += 1;
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.#status.hash) {
      this.#status = { version: this.#status.version, hash, attempts: this.#status.attempts };
      this.#onResult('unchanged');
      return 'unchanged';
    }
    const parsed = parseGatewayConfig(text, this.#env);
    if (!parsed.ok) return this.#refuse(parsed.issues);
    const built = this.#build(parsed.config);
    if (!built.ok) return this.#refuse(built.issues);
    this.#apply(built.runtime, parsed.config);
    this.#debounceMs = parsed.config.reload.debounceMs;
    this.#status = { version: this.#status.version + 1, hash, attempts: this.#status.attempts };
    if (this.#status.version > 1) this.#logger.info({ version: this.#status.version }, 'gateway config reloaded');
    this.#onResult('applied');
    return 'applied';
  }

  #refuse(issues: string[]): 'invalid' {
    this.#status = { ...this.#status, lastError: issues };
    this.#logger.warn({ issues }, 'gateway config refused; keeping the last good one');
    this.#onResult('invalid');
    return 'invalid';
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher?.close();
    await this.#running;
  }
}
