// Packaging (issue 15): each part installs what it uses. The gateway's production install carries no store
// driver or Express; shared-types lists those as optional peers, and every part that loads a shared-types
// subpath declares the peers that subpath loads, so no part runs on another part's hoisted dependencies.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { storeUrls, testSecrets } from '@platform/shared-types/testing';
import { expect } from 'chai';
import { closureNames, closureWorkspaces, productionClosure, pruneToPart, reachable, readLock } from '../../scripts/part-closure.ts';
import { ROOT } from '../../scripts/platform.ts';
import { freePort } from '../support/private-stores.ts';

interface Manifest {
  name: string;
  workspaces?: string[];
  exports?: Record<string, string>;
  scripts?: Record<string, string>;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

const HEAVY = ['express', 'knex', 'mongoose', 'mongodb', 'pg'];
const rootManifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const workspaces = rootManifest.workspaces ?? [];
const manifests = new Map(workspaces.map((dir) => [dir, JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as Manifest]));
const workspaceByName = new Map([...manifests].map(([dir, manifest]) => [manifest.name, dir]));
const builtins = new Set(builtinModules);

/** The package a bare specifier names (`@scope/pkg/sub` -> `@scope/pkg`, `pkg/sub` -> `pkg`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return (specifier.startsWith('@') ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
}

/**
 * What a source file loads at run time: static imports and re-exports that are not type-only, side-effect
 * imports, `import('x')` and `require('x')`; a knex `client: 'pg'` loads its driver by that name.
 */
function runtimeSpecifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(/^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s+['"]([^'"]+)['"]/gm)) {
    const [, , typeOnly, clause = '', specifier = ''] = match;
    const names = /\{([^}]*)\}/.exec(clause)?.[1];
    const onlyTypes = names !== undefined && !/^[\s\w$]+,/.test(clause) && names.split(',').every((name) => name.trim() === '' || /^type\s/.test(name.trim()));
    if (!typeOnly && !onlyTypes) found.push(specifier);
  }
  for (const match of text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm)) found.push(match[1] as string);
  for (const match of text.matchAll(/\b(?:import|require)\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(match[1] as string);
  for (const match of text.matchAll(/\bclient:\s*'(pg|mysql2?|sqlite3|better-sqlite3|tedious|oracledb)'/g)) found.push(match[1] as string);
  return found;
}

const isBare = (specifier: string) => !specifier.startsWith('.') && !specifier.startsWith('/') && !specifier.startsWith('node:') && !builtins.has(specifier);

/** The bare packages a workspace entry file loads, following its relative imports (runtime ones only) inside the workspace. */
function packagesLoadedFrom(entry: string): Set<string> {
  const packages = new Set<string>();
  reachable([entry], (file) => {
    const specifiers = runtimeSpecifiers(file);
    for (const specifier of specifiers.filter(isBare)) packages.add(specifier);
    return specifiers.filter((specifier) => specifier.startsWith('.')).map((specifier) => join(dirname(file), specifier));
  });
  return packages;
}

/** A workspace subpath import (`@platform/shared-types/stores`) as the entry file its exports map names. */
function workspaceEntry(specifier: string): string | undefined {
  const dir = workspaceByName.get(packageOf(specifier));
  if (!dir) return undefined;
  const subpath = `.${specifier.slice(packageOf(specifier).length)}`;
  const target = manifests.get(dir)?.exports?.[subpath];
  return target ? join(ROOT, dir, target) : undefined;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((file) => /\.(ts|tsx|mts|mjs|js|cjs)$/.test(file) && !file.split('/').includes('node_modules'))
    .map((file) => join(ROOT, dir, file));
}

/** Test code and test support (shared-types/src/testing): dev dependencies may serve them. */
const isTestFile = (dir: string, file: string) => {
  const path = relative(join(ROOT, dir), file).split('/');
  return path[0] === 'test' || (dir === 'shared-types' && path[0] === 'src' && path[1] === 'testing');
};

/**
 * Each bare package a workspace's files load (directly or through another workspace's subpath that leaves the
 * package to its users as a peer) that the workspace does not declare: production files against `dependencies`
 * (and, for the workspace that lists them, its peers); test files also against dev dependencies and the root's.
 */
function undeclaredImports(dir: string): string[] {
  const manifest = manifests.get(dir) as Manifest;
  const production = new Set([manifest.name, ...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
  const development = new Set([...production, ...Object.keys(manifest.devDependencies ?? {}), ...Object.keys(rootManifest.devDependencies ?? {})]);
  const problems: string[] = [];
  const check = (where: string, name: string, allowed: Set<string>) => {
    if (!allowed.has(name)) problems.push(`${where} loads ${name}`);
  };
  const startImports = (manifest.scripts?.start ?? '').match(/--import=([^\s]+)/g)?.map((flag) => flag.slice('--import='.length)) ?? [];
  const uses: { where: string; specifier: string; allowed: Set<string> }[] = startImports
    .filter(isBare)
    .map((specifier) => ({ where: `${dir} npm start`, specifier, allowed: production }));
  for (const file of sourceFiles(dir)) {
    const allowed = isTestFile(dir, file) ? development : production;
    for (const specifier of runtimeSpecifiers(file).filter(isBare)) uses.push({ where: relative(ROOT, file), specifier, allowed });
  }
  for (const { where, specifier, allowed } of uses) {
    const name = packageOf(specifier);
    check(where, name, allowed);
    const entry = workspaceByName.get(name) !== dir ? workspaceEntry(specifier) : undefined;
    if (!entry) continue;
    const provider = manifests.get(workspaceByName.get(name) as string) as Manifest;
    for (const loaded of packagesLoadedFrom(entry)) {
      const loadedName = packageOf(loaded);
      // the provider's own dependencies come with it; its peers are its users' to install
      if (provider.peerDependencies?.[loadedName]) check(`${where} (through ${specifier})`, loadedName, allowed);
    }
  }
  return [...new Set(problems)].sort();
}

describe('packaging: each part installs what it uses', () => {
  const lock = readLock(ROOT);
  const parts = ['gateway', 'auth', 'accounting', 'chat', 'monitoring'];

  it("the gateway's production closure in the lock has no mongoose, knex, pg or express", () => {
    const gateway = closureNames(lock, productionClosure(lock, 'gateway'));
    expect(gateway.has('ioredis') && gateway.has('zod') && gateway.has('jsonwebtoken'), 'the walk reaches shared-types and its dependencies').to.equal(true);
    expect([...gateway].filter((name) => HEAVY.includes(name))).to.deep.equal([]);
    // the walk finds the drivers where a part does depend on them
    expect(closureNames(lock, productionClosure(lock, 'auth'))).to.include.keys('mongoose', 'mongodb', 'express');
    expect(closureNames(lock, productionClosure(lock, 'accounting'))).to.include.keys('knex', 'pg', 'express');
  });

  it('shared-types leaves express, ioredis, knex, mongoose and pg to its users (optional peers, not dependencies)', () => {
    const shared = manifests.get('shared-types') as Manifest & { peerDependenciesMeta?: Record<string, { optional?: boolean }> };
    for (const name of [...HEAVY.filter((name) => name !== 'mongodb'), 'ioredis']) {
      expect(shared.dependencies?.[name], name).to.equal(undefined);
      expect(shared.peerDependencies?.[name], name).to.be.a('string');
      expect(shared.peerDependenciesMeta?.[name]?.optional, name).to.equal(true);
    }
  });

  for (const dir of workspaces) {
    it(`${dir}: every package its code loads is one it declares (none from another part's hoisted dependencies)`, () => {
      expect(sourceFiles(dir).length, `${dir} has source files`).to.be.greaterThan(0);
      expect(undeclaredImports(dir)).to.deep.equal([]);
    });
  }

  it('a part loads only its own store driver through shared-types (mongo parts no knex or pg, postgres parts no mongoose)', () => {
    const foreign: Record<string, string[]> = { auth: ['knex', 'pg'], chat: ['knex', 'pg'], accounting: ['mongoose'], monitoring: ['mongoose'] };
    for (const [dir, drivers] of Object.entries(foreign)) {
      const loaded = new Set<string>();
      for (const file of sourceFiles(dir).filter((file) => !isTestFile(dir, file))) {
        for (const specifier of runtimeSpecifiers(file).filter((s) => packageOf(s) === '@platform/shared-types')) {
          const entry = workspaceEntry(specifier);
          if (entry) for (const name of packagesLoadedFrom(entry)) loaded.add(packageOf(name));
        }
      }
      expect(
        [...loaded].filter((name) => drivers.includes(name)),
        dir,
      ).to.deep.equal([]);
    }
  });

  it("a part's production dependencies list only its own store driver (another part's driver serves its tests at most)", () => {
    const foreign: Record<string, string[]> = {
      auth: ['knex', 'pg'],
      chat: ['knex', 'pg'],
      accounting: ['mongoose', 'mongodb'],
      monitoring: ['mongoose', 'mongodb'],
    };
    for (const [dir, drivers] of Object.entries(foreign)) {
      const declared = Object.keys((manifests.get(dir) as Manifest).dependencies ?? {});
      expect(
        declared.filter((name) => drivers.includes(name)),
        dir,
      ).to.deep.equal([]);
    }
  });

  it('a part that declares a peer uses the version range shared-types accepts', () => {
    const peers = manifests.get('shared-types')?.peerDependencies ?? {};
    for (const dir of parts) {
      const manifest = manifests.get(dir) as Manifest;
      for (const [name, range] of Object.entries({ ...manifest.devDependencies, ...manifest.dependencies })) {
        if (peers[name]) expect(range, `${dir} ${name}`).to.equal(peers[name]);
      }
    }
  });
});

describe('packaging: the gateway installed as its image installs it (npm ci from the lock, pruned to its closure)', function () {
  this.timeout(300_000);
  const lock = readLock(ROOT);
  let scratch: string;
  let gateway: ChildProcess | undefined;

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'gateway-install-'));
    // what the Dockerfile's deps stage copies: every workspace manifest and the lock
    for (const file of ['package.json', 'package-lock.json', ...workspaces.map((dir) => `${dir}/package.json`)]) {
      mkdirSync(dirname(join(scratch, file)), { recursive: true });
      copyFileSync(join(ROOT, file), join(scratch, file));
    }
    execFileSync('npm', ['ci', '--omit=dev', '--workspace=gateway', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], {
      cwd: scratch,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    pruneToPart(scratch, 'gateway');
    // and, as its app stage, the part's workspace folders without their tests
    for (const dir of closureWorkspaces(lock, productionClosure(lock, 'gateway'))) {
      cpSync(join(ROOT, dir), join(scratch, dir), { recursive: true, filter: (source) => !/\/(test|node_modules)(\/|$)/.test(relative(ROOT, source)) });
    }
  });
  after(() => {
    gateway?.kill('SIGKILL');
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('has none of express, knex, mongoose, mongodb, pg, and every package of its closure', () => {
    const installed = Object.keys(lock.packages).filter(
      (location) => location.includes('node_modules/') && existsSync(join(scratch, location, 'package.json')),
    );
    const names = new Set(installed.map((location) => location.slice(location.lastIndexOf('node_modules/') + 'node_modules/'.length)));
    expect([...names].filter((name) => HEAVY.includes(name))).to.deep.equal([]);
    // platform-specific optional packages aside, npm ci put every needed one there
    const missing = [...productionClosure(lock, 'gateway')].filter(
      (location) => location.includes('node_modules/') && !(lock.packages[location] as { optional?: boolean }).optional && !existsSync(join(scratch, location)),
    );
    expect(missing).to.deep.equal([]);
    expect(names.has('ioredis') && names.has('prom-client')).to.equal(true);
  });

  it("starts from it as the image's start command does, and the image's health check passes, then fails once it stops", async () => {
    const opsPort = await freePort();
    const env = {
      ...process.env,
      ...testSecrets(),
      NODE_ENV: 'production',
      PORT: '0',
      OPS_PORT: String(opsPort),
      PART: 'gateway',
      REDIS_URL: storeUrls().REDIS_URL,
    };
    const start = (JSON.parse(readFileSync(join(ROOT, 'gateway', 'package.json'), 'utf8')) as Manifest).scripts?.start as string;
    const [command, ...args] = start.split(' ');
    let output = '';
    gateway = spawn(command === 'node' ? process.execPath : (command as string), args, {
      cwd: join(scratch, 'gateway'),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    gateway.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    gateway.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const healthy = () =>
      new Promise<boolean>((resolve) => {
        const check = spawn(process.execPath, [join(ROOT, 'scripts', 'healthcheck.mjs')], { env, stdio: 'ignore' });
        check.once('exit', (code) => resolve(code === 0));
      });
    const until = async (wanted: boolean) => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        if ((await healthy()) === wanted) return true;
        if (gateway?.exitCode !== null && wanted) return false;
        await delay(250);
      }
      return false;
    };
    expect(await until(true), `the gateway did not become ready:\n${output}`).to.equal(true);
    expect(output).to.not.match(/ERR_MODULE_NOT_FOUND|Cannot find (module|package)/);
    gateway.kill('SIGTERM');
    expect(await until(false), 'the health check still passes after the gateway stopped').to.equal(true);
  });
});
