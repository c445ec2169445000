// Scopes free what a block made. `tidy(fn)` disposes every tensor created inside `fn` except
// those it returns (which move to the enclosing scope); `scope()` does the same for a
// `using` block. Tensors made outside any scope live until `dispose()`, with a
// FinalizationRegistry as a safety net for ones that become garbage.
import type { Tensor } from './tensor.js';
import type { Storage } from './storage.js';
import { stats } from './storage.js';

export class Scope implements Disposable {
  /** @internal */ readonly tensors = new Set<Tensor>();
  private ended = false;

  /** Keeps `t` alive past this scope (it moves to the enclosing one). */
  keep<T extends Tensor>(t: T): T {
    if (t._scope === this) {
      this.tensors.delete(t);
      adopt(t, this.parent());
    }
    return t;
  }

  /** Disposes every tensor still owned by this scope. */
  end(keepers: ReadonlySet<Tensor> = new Set()): void {
    if (this.ended) return;
    this.ended = true;
    const parent = this.parent();
    const i = stack.lastIndexOf(this);
    if (i >= 0) stack.splice(i, 1);
    for (const t of this.tensors) {
      if (keepers.has(t)) {
        adopt(t, parent);
      } else {
        t._scope = null; // dispose() would otherwise edit the set being iterated
        t.dispose();
      }
    }
    this.tensors.clear();
  }

  /** The scope this one was opened in, which inherits what this one keeps. */
  private parent(): Scope | null {
    const i = stack.lastIndexOf(this);
    return i > 0 ? stack[i - 1] : null;
  }

  [Symbol.dispose](): void {
    this.end();
  }
}

const stack: Scope[] = [];

function currentScope(): Scope | null {
  return stack.length ? stack[stack.length - 1] : null;
}

const registry =
  typeof FinalizationRegistry !== 'undefined'
    ? new FinalizationRegistry<Storage>((storage) => {
        stats.tensors--;
        storage.release();
      })
    : null;

/**
 * Gives `t` to scope `s`, or to nobody. A scope holds its tensors strongly and disposes them,
 * so only an unowned tensor needs the safety net; arming it lazily keeps the registry out of
 * the hot path of intermediates that live and die inside a scope.
 */
function adopt(t: Tensor, s: Scope | null): void {
  t._scope = s;
  if (s) s.tensors.add(t);
  else if (registry && !t._guarded) {
    registry.register(t, t._storage!, t);
    t._guarded = true;
  }
}

/** Called by every new tensor: counts it and gives it to the current scope (or the safety net). */
export function track(t: Tensor): void {
  stats.tensors++;
  adopt(t, currentScope());
}

/** Called by `dispose()`: the inverse of `track`. */
export function untrack(t: Tensor): void {
  stats.tensors--;
  t._scope?.tensors.delete(t);
  t._scope = null;
  if (t._guarded) registry?.unregister(t);
  t._guarded = false;
}

/** Removes `t` from whatever scope owns it, so no scope will dispose it. */
export function keep<T extends Tensor>(t: T): T {
  t._scope?.tensors.delete(t);
  adopt(t, null);
  return t;
}

/** Opens a scope for a `using` block: `{ using _ = nb.scope(); ... }`. */
export function scope(): Scope {
  const s = new Scope();
  stack.push(s);
  return s;
}

function collect(
  value: unknown,
  out: Set<Tensor>,
  seen: Set<unknown>,
  isTensor: (v: unknown) => v is Tensor,
): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    out.add(value);
    return;
  }
  const items =
    value instanceof Map ? value.values() : Array.isArray(value) ? value : Object.values(value);
  for (const v of items) collect(v, out, seen, isTensor);
}

let isTensorFn: (v: unknown) => v is Tensor = (_v): _v is Tensor => false;

/** @internal Lets tensor.ts register the class check without an import cycle at load time. */
export function setTensorCheck(f: (v: unknown) => v is Tensor): void {
  isTensorFn = f;
}

/**
 * The tensors a scope must not free: those returned, plus everything their autograd graphs
 * read (inputs, intermediates, saved tensors), so `backward()` still works after the scope.
 * The walk stays inside `owner`: graph edges point to older tensors, so nothing made before
 * the scope opened can lead back into it.
 */
function returned(value: unknown, owner: Scope): Set<Tensor> {
  const out = new Set<Tensor>();
  collect(value, out, new Set(), isTensorFn);
  const stack = [...out];
  while (stack.length) {
    const node = stack.pop()!._node;
    if (!node) continue;
    for (const t of [...node.inputs, ...node.saved]) {
      if (t && t._scope === owner && !out.has(t)) {
        out.add(t);
        stack.push(t);
      }
    }
  }
  return out;
}

/**
 * Runs `fn` and disposes every tensor it created except those in its result (found in
 * arrays, Maps and plain objects). Works for async functions too: the scope ends when the
 * promise settles. Concurrent async tidies share one scope stack, so tensors made while
 * both are pending belong to the innermost open one.
 */
export function tidy<T>(fn: () => T): T {
  const s = scope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    s.end();
    throw e;
  }
  if (result instanceof Promise) {
    return result.then(
      (v: unknown) => {
        s.end(returned(v, s));
        return v;
      },
      (e: unknown) => {
        s.end();
        throw e;
      },
    ) as T;
  }
  s.end(returned(result, s));
  return result;
}
