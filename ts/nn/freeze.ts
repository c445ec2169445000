// Freezing by name: `nn.freeze(model, pattern)` / `nn.unfreeze(model, pattern)` set
// requiresGrad on the parameters whose dotted names match and return the names they changed.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';

/** A glob on parameter names (`*` any run of characters, `?` one), a RegExp, or a predicate. */
export type NamePattern = string | RegExp | ((name: string, param: Tensor) => boolean);

/** fnmatch-style glob to an anchored RegExp (`encoder.*` matches everything under encoder). */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** A test for names from a pattern; `op` names the caller in errors. */
export function nameMatcher(op: string, pattern: NamePattern): (n: string, p: Tensor) => boolean {
  if (typeof pattern === 'function') return pattern;
  if (pattern instanceof RegExp)
    return (n) => new RegExp(pattern.source, pattern.flags.replace('g', '')).test(n);
  if (typeof pattern === 'string') {
    const re = globToRegExp(pattern);
    return (n) => re.test(n);
  }
  throw new ValueError(
    `${op}: pattern must be a glob string, a RegExp or a function, got ${String(pattern)}`,
  );
}

function setMatching(op: string, model: Module, pattern: NamePattern, flag: boolean): string[] {
  if (!(model instanceof Module))
    throw new ValueError(`${op}: expected a Module, got ${String(model)}`);
  const match = nameMatcher(op, pattern);
  const changed: string[] = [];
  for (const [name, p] of model.namedParameters()) {
    if (match(name, p) && p.requiresGrad !== flag) {
      p.requiresGrad = flag;
      changed.push(name);
    }
  }
  return changed;
}

/** Stops gradients for the parameters matching `pattern` (all by default); returns their names. */
export function freeze(model: Module, pattern: NamePattern = '*'): string[] {
  return setMatching('freeze', model, pattern, false);
}

/** Makes the parameters matching `pattern` (all by default) trainable; returns their names. */
export function unfreeze(model: Module, pattern: NamePattern = '*'): string[] {
  return setMatching('unfreeze', model, pattern, true);
}
