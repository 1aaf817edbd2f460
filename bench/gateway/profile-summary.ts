// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function and by module, and the inclusive
// time of the functions that matter to a request (top N), so where the gateway's CPU per request goes can be
// read without a flame-graph viewer. Usage: node bench/gateway/profile-summary.ts <file.cpuprofile> [top]
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) throw new Error('usage: profile-summary.ts <file.cpuprofile> [top]');
const top = Number(topArg ?? 40);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const totalHits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
const usPerHit = (profile.endTime - profile.startTime) / Math.max(1, profile.samples.length);

/** where a frame comes from: a package, a node internal area, our source file, or V8 itself */
function moduleOf(url: string, name: string): string {
  if (!url) return `(${name || 'anonymous'})`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  const ours = /\/work\/[^/]+\/(.*)$/.exec(url);
  return ours ? (ours[1] as string) : url;
}

const label = (node: ProfileNode) =>
  `${node.callFrame.functionName || '(anonymous)'} ${moduleOf(node.callFrame.url, node.callFrame.functionName)}:${node.callFrame.lineNumber + 1}`;

const selfByFunction = new Map<string, number>();
const selfByModule = new Map<string, number>();
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  if (!hits) continue;
  selfByFunction.set(label(node), (selfByFunction.get(label(node)) ?? 0) + hits);
  const mod = moduleOf(node.callFrame.url, node.callFrame.functionName);
  selfByModule.set(mod, (selfByModule.get(mod) ?? 0) + hits);
}

// inclusive hits per function, counting a function once per stack (recursion does not double count)
const inclusive = new Map<string, number>();
function walk(id: number, onStack: Set<string>): number {
  const node = byId.get(id) as ProfileNode;
  let hits = node.hitCount ?? 0;
  const name = label(node);
  const fresh = !onStack.has(name);
  if (fresh) onStack.add(name);
  for (const child of node.children ?? []) hits += walk(child, onStack);
  if (fresh) {
    onStack.delete(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + hits);
  }
  return hits;
}
walk(profile.nodes[0]?.id as number, new Set());

const pct = (hits: number) => `${((100 * hits) / Math.max(1, totalHits)).toFixed(1).padStart(5)}%`;
const print = (title: string, map: Map<string, number>, n: number) => {
  process.stdout.write(`\n## ${title}\n`);
  for (const [name, hits] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n))
    process.stdout.write(`${pct(hits)} ${((hits * usPerHit) / 1000).toFixed(0).padStart(7)} ms  ${name}\n`);
};
process.stdout.write(`${file}: ${totalHits} samples, ${(usPerHit).toFixed(0)} us each, ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s\n`);
print('self time by module', selfByModule, 30);
print('self time by function', selfByFunction, top);
print('inclusive time by function', inclusive, top);
