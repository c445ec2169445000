// Module hooks, as torch.nn.Module's: forward pre-hooks (may replace the arguments), forward
// hooks (may replace the output) and full backward hooks (see the module call's grad_input and
// grad_output, may replace grad_input). callModule (module.ts) runs them on every call, so
// they see modules called inside containers and adapter wrappers too.
import { ValueError } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { recordMulti, isGradEnabled } from '../autograd/node.js';
import type { Module } from './module.js';

/** `hook(module, args)`: return an array to replace the arguments, a value for one argument. */
export type ForwardPreHook = (module: Module, args: unknown[]) => unknown;
/** `hook(module, args, output)`: return anything but undefined to replace the output. */
export type ForwardHook = (module: Module, args: unknown[], output: unknown) => unknown;
/**
 * `hook(module, gradInput, gradOutput)`: one entry per tensor argument / tensor output (null
 * where no gradient flows); return an array to replace gradInput. The tensors are valid only
 * during the call (clone to keep them).
 */
export type BackwardHook = (
  module: Module,
  gradInput: (Tensor | null)[],
  gradOutput: (Tensor | null)[],
) => (Tensor | null)[] | void | undefined;

/** What `register*Hook` returns: `remove()` unregisters the hook (idempotent). */
export class RemovableHandle {
  constructor(private readonly drop: () => void) {}
  remove(): void {
    this.drop();
  }
}

interface Hooks {
  pre: Map<number, ForwardPreHook>;
  fwd: Map<number, ForwardHook>;
  bwd: Map<number, BackwardHook>;
}

const table = new WeakMap<Module, Hooks>();
let nextId = 0;

function hooksOf(m: Module): Hooks {
  let h = table.get(m);
  if (!h) table.set(m, (h = { pre: new Map(), fwd: new Map(), bwd: new Map() }));
  return h;
}

/** Adds `fn` to `m`'s hooks of `kind` (run in registration order). */
export function addHook<K extends keyof Hooks>(
  m: Module,
  kind: K,
  fn: Hooks[K] extends Map<number, infer F> ? F : never,
  op: string,
): RemovableHandle {
  if (typeof fn !== 'function') throw new ValueError(`${op}: hook must be a function`);
  const map = hooksOf(m)[kind] as Map<number, unknown>;
  const id = nextId++;
  map.set(id, fn);
  return new RemovableHandle(() => map.delete(id));
}

/** True when `m` has a hook of any kind (the fast path skips everything else). */
export function hasHooks(m: Module): boolean {
  const h = table.get(m);
  return !!h && (h.pre.size > 0 || h.fwd.size > 0 || h.bwd.size > 0);
}

/** Runs `forward` on `args` with `m`'s hooks around it. */
export function runHooked(m: Module, forward: (a: unknown[]) => unknown, args: unknown[]): unknown {
  const h = hooksOf(m);
  let a = args;
  for (const pre of [...h.pre.values()]) {
    const r = pre(m, a);
    if (r !== undefined) a = Array.isArray(r) ? r : [r];
  }
  const bwd = [...h.bwd.values()];
  const tracked = bwd.length > 0 && isGradEnabled() ? new BackwardTracker(m, bwd) : null;
  if (tracked) a = tracked.wrapInputs(a);
  let out = forward(a);
  for (const fwd of [...h.fwd.values()]) {
    const r = fwd(m, a, out);
    if (r !== undefined) out = r;
  }
  return tracked ? tracked.wrapOutputs(out) : out;
}

/** Identity views of `xs` recorded as one node whose backward is `fn`. */
function identity(
  xs: Tensor[],
  name: string,
  fn: (gs: readonly (Tensor | null)[]) => (Tensor | null)[],
) {
  return recordMulti(
    xs.map((x) => x._alias(x.shape)),
    name,
    xs,
    fn,
  );
}

/**
 * torch's BackwardHook: the module's tensor inputs and outputs pass through identity nodes.
 * The outputs' node saves copies of grad_output; the inputs' node, which runs once every
 * gradient of the inputs is known, calls the hooks. With no input needing a gradient the
 * hooks run from the outputs' node with grad_input all null (as torch does).
 */
class BackwardTracker {
  private gradOutput: (Tensor | null)[] | null = null;
  private inputsTracked = false;

  constructor(
    private readonly m: Module,
    private readonly hooks: BackwardHook[],
  ) {}

  /** Tensor arguments in order; grad_input has one slot per tensor argument. */
  private nTensorArgs = 0;

  wrapInputs(args: unknown[]): unknown[] {
    const tensorArgs = args.flatMap((v, i) => (v instanceof Tensor ? [i] : []));
    this.nTensorArgs = tensorArgs.length;
    const slots = tensorArgs.flatMap((i, slot) => ((args[i] as Tensor).requiresGrad ? [slot] : []));
    if (slots.length === 0) return args;
    this.inputsTracked = true;
    const views = identity(
      slots.map((slot) => args[tensorArgs[slot]] as Tensor),
      'BackwardHookFunctionBackward',
      (gs) => {
        const gradInput: (Tensor | null)[] = tensorArgs.map(() => null);
        slots.forEach((slot, k) => (gradInput[slot] = gs[k]));
        const result = this.fire(gradInput);
        return slots.map((slot) => result[slot]);
      },
    );
    const out = [...args];
    slots.forEach((slot, k) => (out[tensorArgs[slot]] = views[k]));
    return out;
  }

  wrapOutputs(out: unknown): unknown {
    const list = out instanceof Tensor ? [out] : Array.isArray(out) ? out : [];
    const idx = list.flatMap((v, i) => (v instanceof Tensor && v.requiresGrad ? [i] : []));
    if (idx.length === 0) return out;
    const views = identity(
      idx.map((i) => list[i] as Tensor),
      'BackwardHookFunctionBackward',
      (gs) => {
        this.release();
        const slots: (Tensor | null)[] = list.map(() => null);
        idx.forEach((i, k) => (slots[i] = gs[k] ? gs[k]!.clone() : null));
        this.gradOutput = slots;
        if (!this.inputsTracked) this.fire(new Array<null>(this.nTensorArgs).fill(null));
        return [...gs];
      },
    );
    if (out instanceof Tensor) return views[0];
    const copy = [...list];
    idx.forEach((i, k) => (copy[i] = views[k]));
    return copy;
  }

  private fire(gradInput: (Tensor | null)[]): (Tensor | null)[] {
    const gradOutput = this.gradOutput ?? [];
    let result = gradInput;
    try {
      for (const hook of this.hooks) {
        const r = hook(this.m, result, gradOutput);
        if (r !== undefined) {
          if (!Array.isArray(r) || r.length !== result.length) {
            throw new ValueError(
              `${this.m.constructor.name} backward hook: returned ${Array.isArray(r) ? r.length : typeof r} gradients, expected an array of ${result.length}`,
            );
          }
          result = r;
        }
      }
    } finally {
      this.release();
    }
    return result;
  }

  private release(): void {
    for (const g of this.gradOutput ?? []) g?.dispose();
    this.gradOutput = null;
  }
}
