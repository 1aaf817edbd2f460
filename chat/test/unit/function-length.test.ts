import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'chai';
import ts from 'typescript';

// Issue 15: no function in chat's services, stores, providers and stream pipeline longer than 60 lines. The
// routers are exempt: their factories list routes (each handler delegates to a service).
const MAX_LINES = 60;
const srcDir = new URL('../../src', import.meta.url).pathname;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('-router.ts') ? [path] : [];
  });
}

/** Every function-like node (declarations, methods, accessors, arrows, function expressions) with its line span. */
export function longFunctions(path: string, text: string, maxLines: number): string[] {
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = file.getLineAndCharacterOfPosition(node.getStart(file)).line;
      const end = file.getLineAndCharacterOfPosition(node.getEnd()).line;
      const lines = end - start + 1;
      if (lines > maxLines) {
        const name = 'name' in node && node.name ? node.name.getText(file) : '(anonymous)';
        found.push(`${relative(srcDir, path)}:${start + 1} ${name} is ${lines} lines`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe(`chat/src: no function longer than ${MAX_LINES} lines outside the *-router.ts files`, () => {
  it('the measure sees a long function (and passes a short one)', () => {
    const body = Array.from({ length: MAX_LINES }, (_, i) => `  const v${i} = ${i};`).join('\n');
    expect(longFunctions(join(srcDir, 'x.ts'), `function long() {\n${body}\n}`, MAX_LINES)).to.have.length(1);
    expect(longFunctions(join(srcDir, 'x.ts'), `const short = () => {\n  return 1;\n};`, MAX_LINES)).to.deep.equal([]);
  });

  it('every function in chat/src (routers aside) fits', () => {
    const files = sourceFiles(srcDir);
    expect(files.length).to.be.greaterThan(20);
    const long = files.flatMap((path) => longFunctions(path, readFileSync(path, 'utf8'), MAX_LINES));
    expect(long).to.deep.equal([]);
  });
});
