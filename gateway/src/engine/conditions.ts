import type { Exchange } from './exchange.ts';
import type { Condition } from './gateway-config.ts';

export type Predicate = (ex: Exchange) => boolean;

/** Express Gateway's condition names (the subset we support), compiled once per config. */
export function compileCondition(condition: Condition | undefined): Predicate {
  if (!condition) return () => true;
  switch (condition.name) {
    case 'always':
      return () => true;
    case 'never':
      return () => false;
    case 'pathExact':
      return (ex) => ex.matchPath === condition.path;
    case 'pathMatch': {
      const pattern = new RegExp(condition.pattern);
      return (ex) => pattern.test(ex.matchPath);
    }
    case 'method': {
      const methods = new Set((Array.isArray(condition.methods) ? condition.methods : [condition.methods]).map((m) => m.toUpperCase()));
      return (ex) => methods.has(ex.method);
    }
    case 'allOf': {
      const all = condition.conditions.map(compileCondition);
      return (ex) => all.every((p) => p(ex));
    }
    case 'oneOf': {
      const any = condition.conditions.map(compileCondition);
      return (ex) => any.some((p) => p(ex));
    }
    case 'not': {
      const inner = compileCondition(condition.condition);
      return (ex) => !inner(ex);
    }
  }
}

/** `/a/b` exact, `/a/:id` one segment, `/a/*` one or more further segments (as in Express Gateway: list `/a` too). */
export function compilePathPattern(pattern: string): RegExp {
  const wildcard = pattern.endsWith('/*');
  const base = wildcard ? pattern.slice(0, -2) : pattern;
  const body = base
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${body}${wildcard ? '/.+' : ''}$`);
}
