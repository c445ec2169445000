// Module: the base class of layers, models and losses. Parameters and submodules are plain
// fields; they are discovered in assignment order, so `namedParameters()` yields the same
// dotted names as PyTorch's `state_dict()` for the same architecture (`fc1.weight`, `0.bias`).
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { noGrad } from '../autograd/node.js';

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

export interface LoadOptions {
  /** Require exactly the module's keys (default true); false ignores missing and extra keys. */
  strict?: boolean;
}

export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export abstract class Module {
  /** True in training mode (dropout active), false after `eval()`. */
  training = true;
  private readonly buffers = new Map<string, { tensor: Tensor; persistent: boolean }>();

  abstract forward(...args: never[]): unknown;

  /** Registers a non-trainable tensor saved in the state dict (when persistent). */
  registerBuffer(name: string, tensor: Tensor, persistent = true): Tensor {
    this.buffers.set(name, { tensor: keep(tensor), persistent });
    return tensor;
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

  /** Parameters with dotted names: own parameters first, then each child's, like PyTorch. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    const seen = new Set<Tensor>();
    for (const [path, m] of this.namedModules(prefix)) {
      for (const [k, v] of Object.entries(m)) {
        if (isParameter(v) && !seen.has(v)) {
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

  /** Freezes (false) or unfreezes every parameter. */
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

  /** Parameters and persistent buffers by dotted name; the tensors share the module's data. */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, t] of [...this.namedParameters(), ...this.namedBuffers(true)])
      out[name] = t.detach();
    return out;
  }

  /**
   * Copies `stateDict`'s tensors into this module's parameters and buffers. Every name, shape
   * and dtype is checked before anything is written, so a failed load changes nothing.
   */
  loadStateDict(stateDict: Record<string, Tensor>, opts: LoadOptions = {}): LoadResult {
    const strict = opts.strict ?? true;
    const own = new Map<string, Tensor>([...this.namedParameters(), ...this.namedBuffers(true)]);
    const has = (k: string): boolean => Object.prototype.hasOwnProperty.call(stateDict, k);
    const missingKeys = [...own.keys()].filter((k) => !has(k));
    const unexpectedKeys = Object.keys(stateDict).filter((k) => !own.has(k));
    if (strict && (missingKeys.length || unexpectedKeys.length)) {
      throw new ValueError(
        `loadStateDict: missing keys [${missingKeys.join(', ')}], unexpected keys [${unexpectedKeys.join(', ')}]`,
      );
    }
    const pairs: [Tensor, Tensor][] = [];
    for (const [name, target] of own) {
      if (!has(name)) continue;
      // A present key must hold a tensor: `{ bias: null }` is an error, not a skipped entry.
      const src: unknown = stateDict[name];
      if (!(src instanceof Tensor)) {
        throw new ValueError(
          `loadStateDict: ${name} is ${src === null ? 'null' : typeof src}, not a Tensor`,
        );
      }
      if (
        src.shape.length !== target.shape.length ||
        src.shape.some((s, i) => s !== target.shape[i])
      ) {
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
      pairs.push([target, src]);
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
