// A part's production dependency closure, read from package-lock.json: what the part's image must carry.
// `npm ci --omit=dev --workspace=<part>` is not enough on its own: npm also installs what the shared-types
// workspace lists as optional peers or dev dependencies (express, knex, mongoose, pg) whenever another part
// needs them in production, so the gateway's image got every store driver. The Dockerfile runs
// `node scripts/part-closure.ts prune <part>` after npm ci to remove everything outside this closure.
// Usage (in the folder of the lock): node scripts/part-closure.ts
//   list <part>        the package names, one a line
//   workspaces <part>  the workspace folders the part runs with (itself, shared-types, webapp for monitoring)
//   prune <part>       after npm ci: removes every installed package outside the closure
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

interface LockEntry {
  name?: string;
  version?: string;
  link?: boolean;
  resolved?: string;
  dev?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export interface Lock {
  packages: Record<string, LockEntry>;
}

export function readLock(root: string): Lock {
  return JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Lock;
}

/** Where node finds `name` required from the package at `from` (a lock location): the nearest node_modules up the path. */
function resolveLocation(lock: Lock, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`;
    if (lock.packages[candidate]) return candidate;
    if (base === '') return undefined;
    const cut = base.lastIndexOf('/node_modules/');
    // a workspace folder (`gateway`) or a top-level package (`node_modules/x`) looks next in the root's node_modules
    base = cut === -1 ? '' : base.slice(0, cut);
  }
}

/** Runtime edges: dependencies, optional dependencies (when locked for this platform set) and required peers; never optional peers or dev. */
function runtimeEdges(entry: LockEntry): { name: string; optional: boolean }[] {
  const edges = Object.keys(entry.dependencies ?? {}).map((name) => ({ name, optional: false }));
  for (const name of Object.keys(entry.optionalDependencies ?? {})) edges.push({ name, optional: true });
  for (const name of Object.keys(entry.peerDependencies ?? {})) {
    if (!entry.peerDependenciesMeta?.[name]?.optional) edges.push({ name, optional: false });
  }
  return edges;
}

/**
 * The lock locations (`node_modules/x`, `node_modules/x/node_modules/y`, workspace folders) a part needs at run
 * time, starting from its workspace folder. Throws when a required dependency is not in the lock.
 */
export function productionClosure(lock: Lock, part: string): Set<string> {
  if (!lock.packages[part]) throw new Error(`${part} is not a workspace of the lock`);
  return reachable([part], (location) => {
    const entry = lock.packages[location] as LockEntry;
    if (entry.link && entry.resolved) return [entry.resolved];
    return runtimeEdges(entry).flatMap((edge) => {
      const found = resolveLocation(lock, location, edge.name);
      if (!found && !edge.optional) throw new Error(`${location} needs ${edge.name}, which the lock does not hold`);
      return found ? [found] : [];
    });
  });
}

/** Everything reachable from `start` through `next` (a graph walk, each item visited once). */
export function reachable<T>(start: T[], next: (item: T) => T[]): Set<T> {
  const seen = new Set<T>();
  const pending = [...start];
  while (pending.length > 0) {
    const item = pending.pop() as T;
    if (seen.has(item)) continue;
    seen.add(item);
    pending.push(...next(item));
  }
  return seen;
}

/** The package names of a closure (installed copies, not workspace folders or links). */
export function closureNames(lock: Lock, closure: Set<string>): Set<string> {
  const names = new Set<string>();
  for (const location of closure) {
    const entry = lock.packages[location] as LockEntry;
    if (location.includes('node_modules/') && !entry.link) names.add(location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length));
  }
  return names;
}

/** The workspace folders in a closure (the part's own and the workspaces it depends on). */
export function closureWorkspaces(lock: Lock, closure: Set<string>): string[] {
  return [...closure].filter((location) => !location.includes('node_modules/') && lock.packages[location]).sort();
}

/** Removes from an install (the folder of the lock) every locked package outside the part's closure; returns what it removed. */
export function pruneToPart(root: string, part: string): string[] {
  const lock = readLock(root);
  const closure = productionClosure(lock, part);
  const removed: string[] = [];
  for (const location of Object.keys(lock.packages)) {
    if (!location.includes('node_modules/') || closure.has(location)) continue;
    if (existsSync(join(root, location))) {
      rmSync(join(root, location), { recursive: true, force: true });
      removed.push(location);
    }
  }
  return removed;
}

if (import.meta.main) {
  const [command, part] = process.argv.slice(2);
  if (!part || !['list', 'workspaces', 'prune'].includes(command ?? '')) {
    process.stderr.write('usage: node scripts/part-closure.ts list|workspaces|prune <part>\n');
    process.exit(2);
  }
  const root = process.cwd();
  if (command === 'list') {
    const lock = readLock(root);
    process.stdout.write(`${[...closureNames(lock, productionClosure(lock, part))].sort().join('\n')}\n`);
  } else if (command === 'workspaces') {
    const lock = readLock(root);
    process.stdout.write(`${closureWorkspaces(lock, productionClosure(lock, part)).join('\n')}\n`);
  } else {
    const removed = pruneToPart(root, part);
    process.stdout.write(`${part}: removed ${removed.length} packages outside its production closure\n`);
  }
}
