// Containers beyond Sequential/ModuleList: Identity, ModuleDict (children by string key, in
// insertion order) and ParameterList (parameters named '0', '1', …), with PyTorch's state-dict
// names and reprs.
import { IndexError, ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, Parameter, isParameter } from './module.js';

/** Returns its input unchanged (a placeholder layer, as `nn.Identity`). */
export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}

/**
 * Submodules by string key. Keys live in a Map, not as fields, so any key (even '1' or
 * 'training') keeps its insertion order and cannot shadow a method; `namedChildren` yields
 * them, which gives state-dict names `<key>.<param>` like PyTorch. Pass `[key, module]` pairs
 * to fix the order: a plain object enumerates integer-like keys ('2') before the others.
 */
export class ModuleDict<M extends Module = Module> extends Module {
  private readonly items = new Map<string, M>();

  constructor(modules: Record<string, M> | Iterable<readonly [string, M]> = {}) {
    super();
    const pairs =
      Symbol.iterator in modules
        ? [...(modules as Iterable<readonly [string, M]>)]
        : Object.entries(modules);
    for (const [k, m] of pairs) this.set(k, m);
  }

  get size(): number {
    return this.items.size;
  }

  /** Adds or replaces the module at `key` (a replaced key keeps its position, as in Python). */
  set(key: string, module: M): this {
    if (typeof key !== 'string' || key === '' || key.includes('.')) {
      throw new ValueError(
        `ModuleDict.set: key must be a non-empty string without '.', got ${JSON.stringify(key)}`,
      );
    }
    if (!(module instanceof Module)) {
      throw new ValueError(
        `ModuleDict.set: expected a Module for key '${key}', got ${String(module)}`,
      );
    }
    this.items.set(key, module);
    return this;
  }

  /** The module at `key`; throws an IndexError naming the key and the keys present. */
  get(key: string): M {
    const m = this.items.get(key);
    if (!m) {
      throw new IndexError(
        `ModuleDict.get: no module '${key}' (keys: ${[...this.items.keys()].join(', ')})`,
      );
    }
    return m;
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  /** Removes `key`; true if it was present. */
  delete(key: string): boolean {
    return this.items.delete(key);
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  values(): IterableIterator<M> {
    return this.items.values();
  }

  entries(): IterableIterator<[string, M]> {
    return this.items.entries();
  }

  [Symbol.iterator](): IterableIterator<[string, M]> {
    return this.items.entries();
  }

  override *namedChildren(): Generator<[string, Module]> {
    yield* this.items.entries();
  }

  forward(): never {
    throw new ValueError('ModuleDict: has no forward(); call its modules from your own forward');
  }
}

/**
 * Parameters stored under the field names '0', '1', … (integer keys enumerate first and in
 * order, so discovery gives PyTorch's names). A tensor that is not yet a parameter becomes one.
 */
export class ParameterList extends Module {
  [index: number]: Tensor;
  private count = 0;

  constructor(parameters: Iterable<Tensor> = []) {
    super();
    for (const p of parameters) this.append(p);
  }

  get length(): number {
    return this.count;
  }

  append(parameter: Tensor): this {
    if (!(parameter instanceof Tensor)) {
      throw new ValueError(`ParameterList.append: expected a Tensor, got ${String(parameter)}`);
    }
    this[this.count++] = isParameter(parameter) ? parameter : Parameter(parameter);
    return this;
  }

  /** The parameter at `i`; negative indices count from the end. */
  at(i: number): Tensor {
    const j = i < 0 ? i + this.count : i;
    if (!Number.isInteger(j) || j < 0 || j >= this.count) {
      throw new IndexError(
        `ParameterList.at: index ${i} is out of range for ${this.count} parameters`,
      );
    }
    return this[j];
  }

  *[Symbol.iterator](): Generator<Tensor> {
    for (let i = 0; i < this.count; i++) yield this[i];
  }

  override extraRepr(): string {
    return [...this]
      .map(
        (p, i) => `  (${i}): Parameter containing: [torch.${p.dtype} of size ${p.shape.join('x')}]`,
      )
      .join('\n');
  }

  forward(): never {
    throw new ValueError('ParameterList: has no forward(); use its parameters in your own forward');
  }
}
