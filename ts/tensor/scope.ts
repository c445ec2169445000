// Who frees a tensor. Four owners, checked in this order when a tensor is created:
//
// 1. A scope: `tidy(fn)` disposes every tensor created inside `fn` except what it returns (and
//    what their graphs read); `scope()` does the same for a `using` block.
// 2. Kept: `keep(t)` (parameters, optimizer state and gradients are kept) lives until disposed.
// 3. Steps (ts/tensor/steps.ts): once a program has passed a step boundary (an optimizer step,
//    a DataLoader batch, a module call under noGrad), a tensor made outside any scope is released
//    at a later boundary when no op has read it for two steps. That keeps a plain PyTorch-style
//    loop flat with no memory calls.
// 4. Before the first boundary: no owner; a FinalizationRegistry frees it once unreachable.
//
// The scope stack and grad mode live in a context. Synchronous code shares one context; an
// async `tidy`/`noGrad` runs in its own (through Node's AsyncLocalStorage), so concurrent code
// neither lands in its scope nor sees its grad mode. Where no AsyncLocalStorage exists (browsers)
// an async tidy/noGrad throws rather than guess.
import type { Tensor } from './tensor.js';
import type { Storage } from './storage.js';
import { stats } from './storage.js';
import { ValueError } from '../errors.js';
import { manage, onUnstepped, stepsStarted, unmanage } from './steps.js';

/** The scope stack and grad mode of one line of execution. */
export interface Context {
  readonly stack: Scope[];
  grad: boolean;
}

const syncContext: Context = { stack: [], grad: true };

interface AsyncStorage {
  getStore(): Context | undefined;
  run<R>(store: Context, fn: () => R): R;
}
let asyncStorage: AsyncStorage | null = null;

/** @internal Installed by `init()` in Node: gives async tidy/noGrad their own context. */
export function setAsyncStorage(s: AsyncStorage | null): void {
  asyncStorage = s;
}

/** The context of the running code. */
export function context(): Context {
  return asyncStorage?.getStore() ?? syncContext;
}

/** Runs an async `fn` in a context of its own derived from the current one. */
export function runAsync<T>(op: string, ctx: Context, fn: () => T): T {
  if (!asyncStorage) {
    throw new ValueError(
      `${op}: an async function needs its own context, which this platform lacks (no AsyncLocalStorage); ` +
        `call ${op} on the synchronous parts inside your async function instead`,
    );
  }
  return asyncStorage.run(ctx, fn);
}

export class Scope implements Disposable {
  /** @internal */ readonly tensors = new Set<Tensor>();
  private ended = false;

  /** @internal */
  constructor(
    private readonly ctx: Context,
    /** The scope this one was opened in, which inherits what this one keeps. */
    private readonly parent: Scope | null,
  ) {}

  /** Keeps `t` alive past this scope (it moves to the enclosing one). */
  keep<T extends Tensor>(t: T): T {
    if (t._scope === this) {
      this.tensors.delete(t);
      adopt(t, this.parent);
    }
    return t;
  }

  /** Disposes every tensor still owned by this scope. */
  end(keepers: ReadonlySet<Tensor> = new Set()): void {
    if (this.ended) return;
    this.ended = true;
    const i = this.ctx.stack.lastIndexOf(this);
    if (i >= 0) this.ctx.stack.splice(i, 1);
    for (const t of this.tensors) {
      if (keepers.has(t)) {
        adopt(t, this.parent);
      } else {
        t._scope = null; // dispose() would otherwise edit the set being iterated
        t.dispose();
      }
    }
    this.tensors.clear();
  }

  [Symbol.dispose](): void {
    this.end();
  }
}

function currentScope(): Scope | null {
  const { stack } = context();
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
 * Gives `t` to scope `s`, or to nobody: then to the steps once they have started (unless it
 * is kept), else to the FinalizationRegistry (armed lazily, so intermediates that live and die
 * inside a scope never touch it).
 */
function adopt(t: Tensor, s: Scope | null): void {
  t._scope = s;
  if (s) {
    s.tensors.add(t);
    return;
  }
  if (!t._kept && stepsStarted()) {
    manage(t);
  } else if (registry && !t._guarded) {
    registry.register(t, t._storage!, t);
    t._guarded = true;
  }
}

onUnstepped((t) => adopt(t, null));

/** Called by every new tensor: counts it and gives it to its owner. */
export function track(t: Tensor): void {
  stats.tensors++;
  adopt(t, currentScope());
}

/** Called by `dispose()`: the inverse of `track`. */
export function untrack(t: Tensor): void {
  stats.tensors--;
  t._scope?.tensors.delete(t);
  t._scope = null;
  unmanage(t);
  if (t._guarded) registry?.unregister(t);
  t._guarded = false;
}

/**
 * Holds `t` until `dispose()`: no scope frees it and no step boundary releases it (like
 * keeping a reference in PyTorch). Returns `t`.
 */
export function keep<T extends Tensor>(t: T): T {
  t.storage(); // a released tensor cannot be kept
  t._scope?.tensors.delete(t);
  unmanage(t);
  t._kept = true;
  adopt(t, null);
  return t;
}

/** Keeps `t` unless a scope owns it: for objects that hold tensors across steps (datasets). */
export function hold<T extends Tensor>(t: T): T {
  return t._scope === null && !t._kept ? keep(t) : t;
}

/** Opens a scope for a `using` block: `{ using _ = nb.scope(); ... }`. */
export function scope(): Scope {
  const ctx = context();
  const s = new Scope(ctx, currentScope());
  ctx.stack.push(s);
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

/** @internal Every tensor found in `value` (arrays, Maps, plain objects). */
export function tensorsIn(value: unknown): Set<Tensor> {
  const out = new Set<Tensor>();
  collect(value, out, new Set(), isTensorFn);
  return out;
}

/**
 * The tensors a scope must not free: those returned, plus everything their autograd graphs
 * read (inputs, intermediates, saved tensors), so `backward()` still works after the scope.
 * The walk stays inside `owner`: graph edges point to older tensors, so nothing made before
 * the scope opened can lead back into it.
 */
function returned(value: unknown, owner: Scope): Set<Tensor> {
  const out = tensorsIn(value);
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
 * arrays, Maps and plain objects). An async `fn` runs in a context of its own, so tensors
 * that concurrent code creates while it is pending never land in its scope; the scope ends
 * when the promise settles.
 */
export function tidy<T>(fn: () => T): T {
  if (isAsyncFunction(fn)) {
    const parent = context();
    const ctx: Context = { stack: [], grad: parent.grad };
    const s = new Scope(ctx, currentScope());
    ctx.stack.push(s);
    return runAsync('tidy', ctx, () =>
      (fn() as Promise<unknown>).then(
        (v: unknown) => {
          s.end(returned(v, s));
          return v;
        },
        (e: unknown) => {
          s.end();
          throw e;
        },
      ),
    ) as T;
  }
  const s = scope();
  let result: T;
  try {
    result = fn();
  } catch (e) {
    s.end();
    throw e;
  }
  // A plain (non-async) function that returned a promise ends here too: what it made
  // synchronously is all this scope saw, and waiting would catch concurrent work.
  s.end(returned(result, s));
  return result;
}

/** True for `async function` / `async () =>` (the only async forms tidy and noGrad can scope). */
export function isAsyncFunction(fn: unknown): boolean {
  return typeof fn === 'function' && fn.constructor?.name === 'AsyncFunction';
}
