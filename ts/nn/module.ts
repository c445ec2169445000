// Module: the base class of layers, models and losses. Parameters and submodules are plain
// fields; they are discovered in assignment order, so `namedParameters()` yields the same
// dotted names as PyTorch's `state_dict()` for the same architecture (`fc1.weight`, `0.bias`).
import { DTypeError, IndexError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { keep, tensorsIn, tidy } from '../tensor/scope.js';
import { isGradEnabled, noGrad } from '../autograd/node.js';
import { stepBoundary } from '../tensor/steps.js';
import {
  addHook,
  hasHooks,
  runHooked,
  type BackwardHook,
  type ForwardHook,
  type ForwardPreHook,
  type RemovableHandle,
} from './hooks.js';

const PARAM = Symbol('nabla.parameter');

/** Marks `t` as a trainable parameter: it requires grad and no scope will dispose it. */
export function Parameter(t: Tensor, requiresGrad = true): Tensor {
  (t as Tensor & { [PARAM]?: boolean })[PARAM] = true;
  t.requiresGrad = requiresGrad;
  return keep(t);
}

export function isParameter(v: unknown): v is Tensor {
  return v instanceof Tensor && (v as Tensor & { [PARAM]?: boolean })[PARAM] === true;
}

/** Adapter parameters (LoRA, bottleneck adapters): in `parameters()`, not in `stateDict()`. */
const adapterParams = new WeakSet<Tensor>();

/** @internal Marks every parameter of `m` (or the given ones) as an adapter's. */
export function markAdapter(m: Module | readonly Tensor[]): void {
  for (const p of m instanceof Module ? m.parameters() : m) adapterParams.add(p);
}

/** True for a parameter of a LoRA or bottleneck adapter. */
export function isAdapterParameter(t: Tensor): boolean {
  return adapterParams.has(t);
}

/** A number as Python's `repr(float)` writes it (`1e-05`, `0.1`, `1.0`), for `extraRepr`. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() gives the shortest round-tripping digits, as Python's repr does; Python
  // then writes them positionally for exponents in [-4, 16) and with a 2-digit exponent else.
  const [mant, e] = x.toExponential().split('e');
  const exp = Number(e);
  if (exp >= -4 && exp < 16) {
    const digits = mant.replace('-', '').replace('.', '');
    const sign = x < 0 ? '-' : '';
    if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
    const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
    return `${sign}${int}.${digits.slice(exp + 1) || '0'}`;
  }
  const abs = Math.abs(exp).toString().padStart(2, '0');
  return `${mant}e${exp < 0 ? '-' : '+'}${abs}`;
}

/** Python's `str(bool)`. */
export function pyBool(b: boolean): string {
  return b ? 'True' : 'False';
}

/** A shape as Python writes a tuple: `(5,)`, `(2, 4)`. */
export function pyTuple(xs: readonly number[]): string {
  return xs.length === 1 ? `(${xs[0]},)` : `(${xs.join(', ')})`;
}

/** Every line but the first indented by `n` spaces (PyTorch's `_addindent`). */
function indentTail(s: string, n: number): string {
  const [first, ...rest] = s.split('\n');
  return [first, ...rest.map((l) => ' '.repeat(n) + l)].join('\n');
}

export interface StateDictOptions {
  /**
   * Also include adapter parameters (LoRA, bottleneck adapters) under their dotted names
   * (default false: the state dict of the base model). Training callbacks and checkpoints
   * pass true, so restoring a LoRA run restores its adapters.
   */
  adapters?: boolean;
}

export interface LoadOptions extends StateDictOptions {
  /** Require exactly the module's keys (default true); false ignores missing and extra keys. */
  strict?: boolean;
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** How deep the current module calls are nested (0 outside every forward). */
let callDepth = 0;

/** Modules seen to own parameters (a model keeps them; walking the tree per call would not pay). */
const withParameters = new WeakSet<Module>();

function hasParameters(m: Module): boolean {
  if (withParameters.has(m)) return true;
  if (m.parameters().length === 0) return false;
  withParameters.add(m);
  return true;
}

/**
 * The one entry point of every module call: `forward` of each instance goes through here, so
 * whatever must see every call (step boundaries, hooks, adapters) lives in one
 * place; hooks (hooks.ts) run here. A top-level call of a model (a module with parameters) made with gradients off is an
 * inference step: a step boundary of that model (its arguments count as in use).
 */
function callModule(m: Module, forward: (...args: unknown[]) => unknown, args: unknown[]): unknown {
  if (callDepth === 0 && !isGradEnabled() && hasParameters(m)) {
    stepBoundary(m, `${m.constructor.name}.forward()`, tensorsIn(args));
  }
  callDepth++;
  try {
    if (!hasHooks(m)) return forward.apply(m, args);
    return runHooked(m, (a) => forward.apply(m, a), args);
  } finally {
    callDepth--;
  }
}

/**
 * Runs `body` as ONE top-level call of `m`: a single step boundary, and the forwards it makes
 * inside are nested calls (no boundaries). For methods such as `generate` that run forward many
 * times: otherwise each of those forwards would advance the steps and release the caller's
 * tensors (the prompt) that the method read only once, at its start.
 */
export function asOneCall<T>(m: Module, args: unknown[], body: () => T): T {
  return callModule(m, body, args) as T;
}

export abstract class Module {
  /** True in training mode (dropout active), false after `eval()`. */
  training = true;
  private readonly buffers = new Map<string, { tensor: Tensor; persistent: boolean }>();

  abstract forward(...args: never[]): unknown;

  constructor() {
    // The subclass's forward is already on the prototype chain here; route calls through
    // callModule (non-enumerable, so parameter discovery never sees it).
    const forward = (this as unknown as { forward: (...a: unknown[]) => unknown }).forward;
    Object.defineProperty(this, 'forward', {
      value: (...args: unknown[]) => callModule(this, forward, args),
      enumerable: false,
      writable: true,
      configurable: true,
    });
  }

  /** Registers a non-trainable tensor saved in the state dict (when persistent). */
  registerBuffer(name: string, tensor: Tensor, persistent = true): Tensor {
    this.buffers.set(name, { tensor: keep(tensor), persistent });
    return tensor;
  }

  /** `hook(module, args)` runs before every forward; returning a value replaces the arguments. */
  registerForwardPreHook(hook: ForwardPreHook): RemovableHandle {
    return addHook(this, 'pre', hook, `${this.constructor.name}.registerForwardPreHook`);
  }

  /** `hook(module, args, output)` runs after every forward; returning a value replaces the output. */
  registerForwardHook(hook: ForwardHook): RemovableHandle {
    return addHook(this, 'fwd', hook, `${this.constructor.name}.registerForwardHook`);
  }

  /**
   * `hook(module, gradInput, gradOutput)` runs when the gradients of a call's tensor arguments
   * are computed (torch's `register_full_backward_hook`); returning an array replaces them.
   */
  registerFullBackwardHook(hook: BackwardHook): RemovableHandle {
    return addHook(this, 'bwd', hook, `${this.constructor.name}.registerFullBackwardHook`);
  }

  /** The submodule at dotted `path` ('' is this module); an IndexError names a missing part. */
  getSubmodule(path: string): Module {
    if (typeof path !== 'string') throw new ValueError(`getSubmodule: path must be a string`);
    let m: Module = this;
    if (path === '') return m;
    const parts = path.split('.');
    parts.forEach((part, i) => {
      const child = childNamed(m, part);
      if (!child) {
        const at = parts.slice(0, i).join('.') || '<root>';
        throw new IndexError(
          `getSubmodule: ${m.constructor.name} at '${at}' has no submodule '${part}' (path '${path}'; children: ${[...m.namedChildren()].map(([k]) => k).join(', ') || 'none'})`,
        );
      }
      m = child;
    });
    return m;
  }

  /**
   * Replaces the submodule at dotted `path` by `module` (torch's `set_submodule`): the parent
   * must exist and already have a submodule of that name (a field, an index of a
   * ModuleList/Sequential, a key of a ModuleDict). Returns the module it replaced.
   */
  setSubmodule(path: string, module: Module): Module {
    if (!(module instanceof Module)) {
      throw new ValueError(`setSubmodule: expected a Module for '${path}', got ${String(module)}`);
    }
    if (typeof path !== 'string' || path === '') {
      throw new ValueError(`setSubmodule: path must be a non-empty dotted name, got '${path}'`);
    }
    const cut = path.lastIndexOf('.');
    const parent = this.getSubmodule(cut < 0 ? '' : path.slice(0, cut));
    const name = path.slice(cut + 1);
    const old = childNamed(parent, name);
    if (!old) {
      throw new IndexError(
        `setSubmodule: ${parent.constructor.name} has no submodule '${name}' to replace (path '${path}')`,
      );
    }
    const dict = parent as unknown as { set?: (k: string, m: Module) => unknown };
    if (!Object.prototype.hasOwnProperty.call(parent, name) && typeof dict.set === 'function') {
      dict.set(name, module); // a ModuleDict key
    } else {
      (parent as unknown as Record<string, Module>)[name] = module;
    }
    return old;
  }

  /** Replaces a registered buffer's tensor (disposing the old one). */
  protected setBuffer(name: string, tensor: Tensor): void {
    const b = this.buffers.get(name);
    if (!b) throw new ValueError(`setBuffer: no buffer named ${name}`);
    if (b.tensor !== tensor) b.tensor.dispose();
    b.tensor = keep(tensor);
  }

  protected buffer(name: string): Tensor {
    const b = this.buffers.get(name);
    if (!b) throw new ValueError(`buffer: no buffer named ${name}`);
    return b.tensor;
  }

  /**
   * This module's own arguments as PyTorch's `extra_repr` writes them (`in_features=2, …`);
   * may span lines. Subclasses override it; '' prints just `Name()`.
   */
  extraRepr(): string {
    return '';
  }

  /**
   * PyTorch's `repr(module)`: `Name(extra)` for a leaf, else the extra lines and one
   * `(name): Child(...)` line per child, nested children indented by two more spaces.
   */
  toString(): string {
    const extra = this.extraRepr();
    const extraLines = extra ? extra.split('\n') : [];
    const childLines = [...this.namedChildren()].map(
      ([k, m]) => `(${k}): ${indentTail(m.toString(), 2)}`,
    );
    const lines = [...extraLines, ...childLines];
    let body = '';
    if (extraLines.length === 1 && childLines.length === 0) body = extraLines[0];
    else if (lines.length) body = `\n  ${lines.join('\n  ')}\n`;
    return `${this.constructor.name}(${body})`;
  }

  /** Direct submodules with their field names, in assignment order. */
  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) yield [k, v];
  }

  *children(): Generator<Module> {
    for (const [, m] of this.namedChildren()) yield m;
  }

  /** This module and every descendant, depth first, with dotted names ('' for this one). */
  *namedModules(prefix = ''): Generator<[string, Module]> {
    yield [prefix, this];
    for (const [k, m] of this.namedChildren()) yield* m.namedModules(prefix ? `${prefix}.${k}` : k);
  }

  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /**
   * Parameters with dotted names: own parameters first, then each child's, like PyTorch. A
   * tensor assigned as a parameter of several modules (tied weights, `lmHead.weight =
   * wte.weight`) is one parameter: with `removeDuplicate` (the default, as PyTorch) it is
   * yielded once under its first name, so optimizers update it once; `false` yields every name.
   */
  namedParameters(prefix = '', removeDuplicate = true): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of Object.entries(m)) {
        if (isParameter(v) && !(removeDuplicate && seen.has(v))) {
          seen.add(v);
          out.push([path ? `${path}.${k}` : k, v]);
        }
      }
    }
    return out;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Buffers with dotted names (only the persistent ones, which the state dict holds, if asked). */
  namedBuffers(persistentOnly = false): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      for (const [k, b] of m.buffers) {
        if (b.persistent || !persistentOnly) out.push([path ? `${path}.${k}` : k, b.tensor]);
      }
    }
    return out;
  }

  /** Sets training mode on this module and all descendants. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Freezes (false) or unfreezes every parameter of this module and its descendants. */
  requiresGrad_(requiresGrad = true): this {
    for (const p of this.parameters()) p.requiresGrad = requiresGrad;
    return this;
  }

  /** Drops every parameter's gradient (PyTorch's `set_to_none=True`). */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Runs `fn` on every module, children first, then returns this. */
  apply(fn: (m: Module) => void): this {
    for (const m of [...this.modules()].reverse()) fn(m);
    return this;
  }

  /**
   * Parameters and persistent buffers by dotted name; the tensors share the module's data. A
   * tied parameter appears under every name it has (as PyTorch's `state_dict()`). Adapter
   * parameters (nn.lora, nn.adapters) are left out, so the base names and keys stay those of
   * the plain model while adapters are attached (`nn.lora.stateDict` saves them; or pass
   * `{adapters: true}`).
   */
  stateDict(opts: StateDictOptions = {}): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, t] of this.stateEntries(opts.adapters ?? false)) out[name] = t.detach();
    return out;
  }

  /**
   * The state dict's (name, tensor) pairs in PyTorch's order (each module's parameters, then
   * its persistent buffers, then its children's): adapter parameters only when asked.
   */
  private stateEntries(adapters: boolean): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [path, m] of this.namedModules()) {
      const name = (k: string) => (path ? `${path}.${k}` : k);
      for (const [k, v] of Object.entries(m)) {
        if (isParameter(v) && (adapters || !adapterParams.has(v))) out.push([name(k), v]);
      }
      for (const [k, b] of m.buffers) if (b.persistent) out.push([name(k), b.tensor]);
    }
    return out;
  }

  /**
   * Copies `stateDict`'s tensors into this module's parameters and buffers. Every name, shape
   * and dtype is checked before anything is written, so a failed load changes nothing. A tied
   * parameter loads from any one of its names; when the dict holds several, their values must
   * be equal, and a name whose alias is present is not missing.
   */
  loadStateDict(stateDict: Record<string, Tensor>, opts: LoadOptions = {}): LoadResult {
    const strict = opts.strict ?? true;
    const entries = this.stateEntries(opts.adapters ?? false);
    const own = new Map<string, Tensor>(entries);
    // Names of each distinct tensor, in state-dict order (more than one when tied).
    const aliases = new Map<Tensor, string[]>();
    for (const [name, t] of entries) {
      const names = aliases.get(t);
      if (names) names.push(name);
      else aliases.set(t, [name]);
    }
    const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(stateDict, k);
    const missingKeys = [...own.keys()].filter((k) => !aliases.get(own.get(k)!)!.some(has));
    const unexpectedKeys = Object.keys(stateDict).filter((k) => !own.has(k));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new ValueError(
        `loadStateDict: missing keys [${missingKeys.join(', ')}], unexpected keys [${unexpectedKeys.join(', ')}]`,
      );
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [target, names] of aliases) {
      const present = names.filter(has);
      const srcs = present.map((name) => checkSource(name, stateDict[name], target));
      if (srcs.length === 0) continue;
      for (let i = 1; i < srcs.length; i++) {
        if (!sameValues(srcs[0], srcs[i])) {
          throw new ValueError(
            `loadStateDict: ${present[0]} and ${present[i]} name one tied parameter but hold different values`,
          );
        }
      }
      pairs.push([target, srcs[0]]);
    }
    noGrad(() => pairs.forEach(([target, src]) => target.copy_(src)));
    return { missingKeys, unexpectedKeys };
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.dispose();
    }
    for (const [, b] of this.namedBuffers()) b.dispose();
  }
}

/** `m`'s direct submodule called `name`, or undefined. */
function childNamed(m: Module, name: string): Module | undefined {
  for (const [k, c] of m.namedChildren()) if (k === name) return c;
  return undefined;
}

/** A state-dict entry checked against the module's tensor (type, shape, dtype, not disposed). */
function checkSource(name: string, src: unknown, target: Tensor): Tensor {
  // A present key must hold a tensor: `{ bias: null }` is an error, not a skipped entry.
  if (!(src instanceof Tensor)) {
    throw new ValueError(
      `loadStateDict: ${name} is ${src === null ? 'null' : typeof src}, not a Tensor`,
    );
  }
  if (src.shape.length !== target.shape.length || src.shape.some((s, i) => s !== target.shape[i])) {
    throw new ShapeError(
      `loadStateDict: ${name} has shape ${fmt(src.shape)} in the state dict but ${fmt(target.shape)} in the module`,
    );
  }
  if (src.dtype !== target.dtype) {
    throw new DTypeError(
      `loadStateDict: ${name} is ${src.dtype} in the state dict but ${target.dtype} in the module`,
    );
  }
  src.storage(); // a disposed source fails here, before anything is written
  return src;
}

/** Equal contents (NaN equals NaN), for the several names of a tied parameter. */
function sameValues(a: Tensor, b: Tensor): boolean {
  const [x, y] = [a.toArray(), b.toArray()];
  for (let i = 0; i < x.length; i++)
    if (x[i] !== y[i] && !(x[i] !== x[i] && y[i] !== y[i])) return false;
  return true;
}

/**
 * For a stack of layers: returns a runner that calls each layer step in its own scope when
 * gradients are off and no module under `owner` has hooks. Nothing reads a step's
 * intermediates once it has returned, so they are freed at once and a noGrad pass holds one
 * layer's temporaries at a time (PyTorch frees them as they go out of use). With gradients,
 * or hooks that may keep an intermediate output, steps run plainly.
 */
export function layerRunner(owner: Module): <T>(step: () => T) => T {
  const release = !isGradEnabled() && ![...owner.modules()].some(hasHooks);
  return release ? (step) => tidy(step) : (step) => step();
}
