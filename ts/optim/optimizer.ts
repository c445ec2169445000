// The Optimizer base class: parameter groups with per-group hyperparameters, lazily allocated
// per-parameter state, an atomic `step()` and a validated `stateDict()`/`loadStateDict()`.
// Subclasses only declare their options and state buffers and call their fused kernel.
import { DTypeError, DisposedError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { keep } from '../tensor/scope.js';
import { stepBoundary } from '../tensor/steps.js';
import { sameShape } from '../tensor/shape.js';
import { noGrad } from '../autograd/node.js';
import { full } from '../ops/creation.js';
import { clone } from '../ops/copy.js';
import { flushState } from './denormal.js';

/** Flags of the fused `*_step_f32` kernels (abi.rs `OPTIM_*`; test/optim.test.ts checks them). */
export const OptimFlag = {
  MAXIMIZE: 1,
  NESTEROV: 2,
  FIRST: 4,
  DECOUPLED: 8,
  AMSGRAD: 16,
  CENTERED: 32,
} as const;

/** How a hyperparameter is typed: a number, a boolean, or a pair of numbers (Adam's betas). */
export type OptionKind = 'number' | 'boolean' | 'pair';
export type Schema<O> = { readonly [K in keyof O]: OptionKind };

/** A parameter group: its tensors and its hyperparameters (mutable, e.g. by schedulers). */
export type ParamGroup<O> = O & {
  params: Tensor[];
  /** The learning rate a scheduler started from (set by the first scheduler attached). */
  initialLr?: number;
};

/** A group as passed to a constructor: unspecified options inherit the optimizer's defaults. */
export type ParamGroupSpec<O> = Partial<O> & { params: Iterable<Tensor> };

/** `model.parameters()`, or a list of parameter groups. */
export type Params<O> = Iterable<Tensor> | Iterable<ParamGroupSpec<O>>;

/** One state buffer of a parameter: its name and initial value. */
export interface BufferSpec {
  name: string;
  init: number;
  /** A loaded state may lack it (SGD's momentum buffer, which the first step initialises). */
  optional?: boolean;
}

/** A parameter's state: how many steps it has taken and its buffers (shaped like it). */
export interface ParamState {
  step: number;
  buffers: Map<string, Tensor>;
}

/** Hyperparameters of a saved group plus the indices of its parameters. */
export type GroupDict = Record<string, number | boolean | number[]> & { params: number[] };

/**
 * A snapshot of an optimizer: per-parameter state by index (in group order) holding `step`
 * and copies of the buffers, and each group's hyperparameters. Only numbers, booleans,
 * number arrays and Tensors, so it can be written as safetensors plus JSON metadata.
 */
export interface OptimizerStateDict {
  state: Record<number, Record<string, number | Tensor>>;
  paramGroups: GroupDict[];
}

/**
 * `over` on top of `base`; options given as `undefined` keep the default, and arrays (betas)
 * are copied so groups never share a mutable array with each other or the defaults.
 */
function merge<T extends object>(base: T, over: object): T {
  const out: Record<string, unknown> = {};
  for (const src of [base, over]) {
    for (const [k, v] of Object.entries(src)) {
      if (v !== undefined) out[k] = Array.isArray(v) ? [...(v as unknown[])] : v;
    }
  }
  return out as T;
}

export abstract class Optimizer<O extends { lr: number }> {
  readonly paramGroups: ParamGroup<O>[] = [];
  /** @internal Per-parameter state, created on a parameter's first step. */
  protected readonly state = new Map<Tensor, ParamState>();
  protected readonly defaults: Partial<O>;

  protected constructor(
    /** The class name every error message starts with. */
    readonly name: string,
    params: Params<O>,
    defaults: Partial<O>,
    options: Partial<O>,
    private readonly schema: Schema<O>,
  ) {
    if (options === null || typeof options !== 'object') {
      throw new ValueError(`${name}: options must be an object`);
    }
    this.checkOptions(name, options, false);
    this.defaults = merge(defaults, options);
    if (params instanceof Tensor || params == null || typeof params !== 'object') {
      throw new ValueError(
        `${name}: params must be an iterable of Tensors or of parameter groups, got ${params instanceof Tensor ? 'a Tensor' : String(params)}`,
      );
    }
    const list = [...(params as Iterable<unknown>)];
    if (list.length === 0) throw new ValueError(`${name}: got an empty parameter list`);
    const specs = list[0] instanceof Tensor ? [{ params: list as Tensor[] }] : list;
    for (const spec of specs) this.addParamGroup(spec as ParamGroupSpec<O>);
  }

  // ------------------------------------------------------------------ subclass hooks

  /** Range checks of a complete group's options (types are already checked); throws ValueError. */
  protected abstract checkRanges(where: string, group: O): void;
  /** The state buffers a parameter of `group` needs. */
  protected abstract buffers(group: O): readonly BufferSpec[];
  /** Every buffer name this optimizer may keep (what a loaded state may contain). */
  protected abstract readonly bufferNames: readonly string[];
  /**
   * Applies one update with the fused kernel. `state.step` already counts this step and holds
   * every buffer of `buffers(group)`; `fresh` names those allocated for this step.
   */
  protected abstract update(
    p: Tensor,
    grad: Tensor,
    group: ParamGroup<O>,
    state: ParamState,
    fresh: ReadonlySet<string>,
  ): void;

  // ------------------------------------------------------------------ groups

  /** Adds a group (PyTorch's `add_param_group`); its unspecified options take the defaults. */
  addParamGroup(spec: ParamGroupSpec<O>): void {
    const where = `${this.name}.addParamGroup`;
    if (spec === null || typeof spec !== 'object' || !('params' in spec)) {
      throw new ValueError(`${where}: a parameter group must be an object with params`);
    }
    const { params, ...options } = spec as ParamGroupSpec<O>;
    if (params instanceof Tensor || params == null || typeof params !== 'object') {
      throw new ValueError(`${where}: params must be an iterable of Tensors`);
    }
    const list = [...params];
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    list.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new ValueError(`${where}: params[${i}] is not a Tensor`);
      if (p.isDisposed) throw new DisposedError(`${where}: params[${i}] was disposed`);
      if (p.dtype !== 'float32') {
        throw new DTypeError(`${where}: params[${i}] is ${p.dtype}; only float32 can be optimized`);
      }
      if (!p.isLeaf) throw new ValueError(`${where}: params[${i}] is not a leaf tensor`);
      if (seen.has(p)) {
        throw new ValueError(`${where}: params[${i}] appears in more than one place`);
      }
      seen.add(p);
    });
    const group = merge(this.defaults, options) as O;
    this.checkGroup(this.name, group);
    this.paramGroups.push({ ...group, params: list });
  }

  /** Types (every schema key present, nothing unknown) and ranges of a group's options. */
  private checkGroup(where: string, group: object): void {
    this.checkOptions(where, group, true);
    const g = group as O & { initialLr?: unknown };
    if (g.initialLr !== undefined && typeof g.initialLr !== 'number') {
      throw new ValueError(`${where}: initialLr must be a number, got ${String(g.initialLr)}`);
    }
    this.checkRanges(where, g);
  }

  private checkOptions(where: string, o: object, complete: boolean): void {
    const schema = this.schema as Record<string, OptionKind>;
    const values = o as Record<string, unknown>;
    for (const [k, v] of Object.entries(values)) {
      if (k === 'params' || k === 'initialLr') continue;
      const kind = schema[k];
      if (kind === undefined) {
        throw new ValueError(
          `${where}: unknown option ${k} (options: ${Object.keys(schema).join(', ')})`,
        );
      }
      if (v === undefined && !complete) continue;
      const ok =
        kind === 'pair'
          ? Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')
          : typeof v === kind;
      if (!ok) {
        const want = kind === 'pair' ? 'a pair of numbers' : `a ${kind}`;
        throw new ValueError(`${where}: ${k} must be ${want}, got ${JSON.stringify(v)}`);
      }
    }
    if (complete) {
      for (const k of Object.keys(schema)) {
        if (values[k] === undefined) throw new ValueError(`${where}: option ${k} is required`);
      }
    }
  }

  // ------------------------------------------------------------------ stepping

  /** Drops every parameter's gradient (disposing it), PyTorch's `zero_grad(set_to_none=True)`. */
  zeroGrad(): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /**
   * Updates every parameter that has a gradient. Everything (options, shapes, dtypes, disposed
   * tensors) is checked and all new state is allocated before the first parameter changes, so
   * a step that throws leaves parameters and state exactly as they were.
   */
  step(): void {
    const where = `${this.name}.step`;
    const work: { p: Tensor; g: Tensor; group: ParamGroup<O> }[] = [];
    const seen = new Set<Tensor>();
    let index = 0;
    for (const group of this.paramGroups) {
      this.checkGroup(where, group);
      for (const p of group.params) {
        const i = index++;
        if (!(p instanceof Tensor))
          throw new ValueError(`${where}: parameter ${i} is not a Tensor`);
        if (seen.has(p)) throw new ValueError(`${where}: parameter ${i} appears twice`);
        seen.add(p);
        const g = p.grad;
        if (g == null) continue;
        this.checkPair(where, i, p, g);
        work.push({ p, g, group });
      }
    }
    const added = this.allocate(work);
    for (const [k, { p, g, group }] of work.entries()) {
      const st = this.state.get(p) ?? { step: 0, buffers: new Map<string, Tensor>() };
      this.state.set(p, st);
      for (const [name, t] of added[k]) st.buffers.set(name, t);
      st.step += 1;
      this.update(p, g, group, st, new Set(added[k].keys()));
      flushState(st.buffers.values());
      p.storage().version++;
    }
    // A training step ends here: release what the loop made and no longer reads.
    stepBoundary(this, `${this.name}.step()`, [], true);
  }

  private checkPair(where: string, i: number, p: Tensor, g: Tensor): void {
    if (p.isDisposed) throw new DisposedError(`${where}: parameter ${i} was disposed`);
    if (p.dtype !== 'float32') {
      throw new DTypeError(`${where}: parameter ${i} is ${p.dtype}; only float32 can be optimized`);
    }
    if (!(g instanceof Tensor))
      throw new ValueError(`${where}: grad of parameter ${i} is not a Tensor`);
    if (g.isDisposed) throw new DisposedError(`${where}: grad of parameter ${i} was disposed`);
    if (g.dtype !== 'float32') {
      throw new DTypeError(`${where}: grad of parameter ${i} is ${g.dtype}, expected float32`);
    }
    if (!sameShape(g.shape, p.shape)) {
      throw new ShapeError(
        `${where}: grad of parameter ${i} has shape ${fmt(g.shape)} but the parameter has ${fmt(p.shape)}`,
      );
    }
    // the kernels read the gradient while writing the parameter
    if (g.storage() === p.storage()) {
      throw new ValueError(`${where}: grad of parameter ${i} shares the parameter's memory`);
    }
    for (const [name, t] of this.state.get(p)?.buffers ?? []) {
      if (t.isDisposed)
        throw new DisposedError(`${where}: state ${name} of parameter ${i} was disposed`);
    }
  }

  /** The buffers each work item still lacks, allocated (all or none) and kept from scopes. */
  private allocate(work: readonly { p: Tensor; group: ParamGroup<O> }[]): Map<string, Tensor>[] {
    const added: Map<string, Tensor>[] = [];
    try {
      for (const { p, group } of work) {
        const have = this.state.get(p)?.buffers;
        const m = new Map<string, Tensor>();
        added.push(m);
        for (const b of this.buffers(group)) {
          if (!have?.has(b.name)) m.set(b.name, keep(full(p.shape, b.init)));
        }
      }
    } catch (e) {
      for (const m of added) for (const t of m.values()) t.dispose();
      throw e;
    }
    return added;
  }

  /** Frees all optimizer state (the parameters are untouched); stepping again starts afresh. */
  dispose(): void {
    for (const st of this.state.values()) for (const t of st.buffers.values()) t.dispose();
    this.state.clear();
  }

  // ------------------------------------------------------------------ state dict

  /** A snapshot: copies of the state buffers, step counts and each group's hyperparameters. */
  stateDict(): OptimizerStateDict {
    const out: OptimizerStateDict = { state: {}, paramGroups: [] };
    let index = 0;
    noGrad(() => {
      for (const group of this.paramGroups) {
        const { params, ...options } = group;
        const entry: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(options)) entry[k] = Array.isArray(v) ? [...v] : v;
        entry.params = params.map(() => index++);
        out.paramGroups.push(entry as GroupDict);
        params.forEach((p, j) => {
          const st = this.state.get(p);
          if (!st) return;
          const s: Record<string, number | Tensor> = { step: st.step };
          for (const [name, t] of st.buffers) s[name] = clone(t);
          out.state[(entry.params as number[])[j]] = s;
        });
      }
    });
    return out;
  }

  /**
   * Restores a `stateDict()` (copying its tensors). Group counts and sizes, every option, step
   * count, buffer name, shape and dtype are checked first: a failed load changes nothing.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    if (sd === null || typeof sd !== 'object' || !Array.isArray(sd.paramGroups)) {
      throw new ValueError(`${where}: expected { state, paramGroups }`);
    }
    if (sd.state === null || typeof sd.state !== 'object') {
      throw new ValueError(`${where}: state must be an object`);
    }
    if (sd.paramGroups.length !== this.paramGroups.length) {
      throw new ValueError(
        `${where}: the state dict has ${sd.paramGroups.length} parameter groups, the optimizer ${this.paramGroups.length}`,
      );
    }
    // saved index -> own parameter, and the validated options of each group
    const byIndex = new Map<number, { p: Tensor; group: O }>();
    const options: Record<string, unknown>[] = [];
    sd.paramGroups.forEach((saved, gi) => {
      const own = this.paramGroups[gi];
      if (saved === null || typeof saved !== 'object' || !Array.isArray(saved.params)) {
        throw new ValueError(`${where}: paramGroups[${gi}] has no params list`);
      }
      if (saved.params.length !== own.params.length) {
        throw new ValueError(
          `${where}: paramGroups[${gi}] has ${saved.params.length} parameters, the optimizer's group ${own.params.length}`,
        );
      }
      const { params, ...opts } = saved;
      this.checkGroup(`${where}: paramGroups[${gi}]`, opts);
      options.push(opts);
      params.forEach((idx, j) => {
        if (!Number.isInteger(idx) || byIndex.has(idx)) {
          throw new ValueError(`${where}: paramGroups[${gi}] has a bad or repeated index ${idx}`);
        }
        byIndex.set(idx, { p: own.params[j], group: opts as unknown as O });
      });
    });
    const entries: [Tensor, number, [string, Tensor][]][] = [];
    for (const [key, value] of Object.entries(sd.state)) {
      // Only canonical indices ("1", not "01" or "1.0"): two spellings of one index would load
      // one parameter twice and leak the first copy's buffers.
      const target = /^(0|[1-9][0-9]*)$/.test(key) ? byIndex.get(Number(key)) : undefined;
      if (!target) throw new ValueError(`${where}: state ${key} belongs to no parameter`);
      entries.push([target.p, ...this.checkEntry(`${where}: state ${key}`, value, target)]);
    }
    // all checks passed: copy (all or nothing), then swap
    const copies: [Tensor, ParamState][] = [];
    try {
      noGrad(() => {
        for (const [p, step, bufs] of entries) {
          const buffers = new Map<string, Tensor>();
          copies.push([p, { step, buffers }]);
          for (const [name, t] of bufs) buffers.set(name, keep(clone(t)));
        }
      });
    } catch (e) {
      for (const [, st] of copies) for (const t of st.buffers.values()) t.dispose();
      throw e;
    }
    this.dispose();
    for (const [p, st] of copies) this.state.set(p, st);
    this.paramGroups.forEach((group, gi) => {
      const g = group as Record<string, unknown>;
      delete g.initialLr;
      for (const [k, v] of Object.entries(options[gi])) g[k] = Array.isArray(v) ? [...v] : v;
    });
  }

  /** Checks one saved state entry against its parameter; returns its step and buffers. */
  private checkEntry(
    where: string,
    value: unknown,
    { p, group }: { p: Tensor; group: O },
  ): [number, [string, Tensor][]] {
    if (value === null || typeof value !== 'object')
      throw new ValueError(`${where} is not an object`);
    const { step, ...rest } = value as Record<string, unknown>;
    if (typeof step !== 'number' || !Number.isInteger(step) || step < 0) {
      throw new ValueError(`${where}: step must be a non-negative integer, got ${String(step)}`);
    }
    const bufs: [string, Tensor][] = [];
    for (const [name, t] of Object.entries(rest)) {
      if (!this.bufferNames.includes(name)) {
        throw new ValueError(
          `${where}: unknown buffer ${name} (expected ${this.bufferNames.join(', ')})`,
        );
      }
      if (!(t instanceof Tensor)) throw new ValueError(`${where}: ${name} is not a Tensor`);
      if (t.isDisposed) throw new DisposedError(`${where}: ${name} was disposed`);
      if (t.dtype !== 'float32')
        throw new DTypeError(`${where}: ${name} is ${t.dtype}, expected float32`);
      if (!sameShape(t.shape, p.shape)) {
        throw new ShapeError(
          `${where}: ${name} has shape ${fmt(t.shape)} but the parameter has ${fmt(p.shape)}`,
        );
      }
      bufs.push([name, t]);
    }
    for (const b of this.buffers(group)) {
      if (!b.optional && !(b.name in rest)) {
        throw new ValueError(`${where}: missing buffer ${b.name}`);
      }
    }
    return [step, bufs];
  }
}

/** Throws unless every listed option of `o` is >= 0 (PyTorch's "Invalid ... value" checks). */
export function nonNegative(where: string, o: object, keys: readonly string[]): void {
  for (const k of keys) {
    const v = (o as Record<string, number>)[k];
    if (!(v >= 0)) throw new ValueError(`${where}: invalid ${k} ${v}, must be >= 0`);
  }
}
