// How an op records itself for reverse mode: its output gets a GradNode holding the inputs
// and a backward closure that maps the output's gradient to the inputs' gradients. The op's
// forward and backward are written side by side in the op's own function (micrograd style).
// An op with several outputs (split, an LSTM cell's h and c) records ONE node shared by all of
// them; its backward runs once and receives every output's gradient (null where none came).
import type { Tensor } from '../tensor/tensor.js';
import { context, isAsyncFunction, runAsync } from '../tensor/scope.js';

/** Gradients for an op's inputs, in input order; null where no gradient flows. */
export type Grads = readonly (Tensor | null | undefined)[];

export interface GradNode {
  /** The op's name, for error messages and `t.gradFn`. */
  readonly name: string;
  /** The op's inputs; entries that need no gradient are null. */
  readonly inputs: readonly (Tensor | null)[];
  /** How many outputs share this node (1 for most ops). */
  readonly nOutputs: number;
  /**
   * Maps the outputs' gradients (in output order, null for an output that got none; at least
   * one is non-null) to one gradient per input (same shapes as the inputs). Each result is a
   * new tensor or one of `gs`; the walk disposes them once they are accumulated.
   */
  readonly backward: (gs: readonly (Tensor | null)[]) => Grads;
  /** Tensors the backward reads besides the inputs and the output (masks, indices, maxima). */
  readonly saved: readonly Tensor[];
  /**
   * Version of every tensor in `inputs` (non-null) and `saved` when the op ran: backward
   * refuses to run on values an in-place op has changed since.
   */
  readonly versions: readonly number[];
  /** Set once a backward without `retainGraph` has passed through this node. */
  freed: boolean;
}

export function isGradEnabled(): boolean {
  return context().grad;
}

/** Runs `fn` with grad mode set to `on`, restoring it afterwards; an async `fn` in its own context. */
function withGrad<T>(op: string, on: boolean, fn: () => T): T {
  const ctx = context();
  if (isAsyncFunction(fn)) return runAsync(op, { stack: ctx.stack, grad: on }, fn);
  const prev = ctx.grad;
  ctx.grad = on;
  try {
    return fn();
  } finally {
    ctx.grad = prev;
  }
}

/**
 * Runs `fn` without recording a graph (like `torch.no_grad()`). An async `fn` gets a context of
 * its own, so code running concurrently keeps its gradients.
 */
export function noGrad<T>(fn: () => T): T {
  return withGrad('noGrad', false, fn);
}

/** Runs `fn` with gradients recorded even inside `noGrad` (like `torch.enable_grad()`). */
export function enableGrad<T>(fn: () => T): T {
  return withGrad('enableGrad', true, fn);
}

/** The tensors whose versions a node checks: non-null inputs, then saved ones. */
export function checkedTensors(node: GradNode): Tensor[] {
  const out: Tensor[] = [];
  for (const t of node.inputs) if (t) out.push(t);
  out.push(...node.saved);
  return out;
}

/**
 * Attaches `backward` to `out` when grad mode is on and some input requires a gradient.
 * `saved` lists any other tensor the backward closure reads, so scopes keep them alive as long
 * as the graph. Returns `out` so an op can end with `return record(out, ...)`.
 */
export function record(
  out: Tensor,
  name: string,
  inputs: readonly Tensor[],
  backward: (g: Tensor) => Grads,
  saved: readonly Tensor[] = [],
): Tensor {
  recordMulti([out], name, inputs, (gs) => backward(gs[0]!), saved);
  return out;
}

/** Which output of its node a tensor is (absent: 0, the only one). */
const outputIndices = new WeakMap<Tensor, number>();

/** @internal The position of `t` among its node's outputs. */
export function outputIndex(t: Tensor): number {
  return outputIndices.get(t) ?? 0;
}

/**
 * `record` for an op with several outputs: ONE node shared by all of `outs`, whose backward
 * gets every output's gradient at once (null for outputs that got none), so a fused kernel
 * pair needs no per-output workaround. Returns `outs`.
 */
export function recordMulti<T extends readonly Tensor[]>(
  outs: T,
  name: string,
  inputs: readonly Tensor[],
  backward: (gs: readonly (Tensor | null)[]) => Grads,
  saved: readonly Tensor[] = [],
): T {
  if (!context().grad || !inputs.some((t) => t.requiresGrad)) return outs;
  // Inputs that need no gradient may still be read by the backward (mul reads the other factor).
  const constants = inputs.filter((t) => !t.requiresGrad);
  const node: GradNode = {
    name,
    inputs: inputs.map((t) => (t.requiresGrad ? t : null)),
    nOutputs: outs.length,
    backward,
    saved: constants.length ? [...constants, ...saved] : saved,
    versions: [],
    freed: false,
  };
  (node as unknown as { versions: number[] }).versions = checkedTensors(node).map((t) =>
    t.isDisposed ? -1 : t.storage().version,
  );
  outs.forEach((out, k) => {
    // An integer output (topk's indices) carries no gradient; its slot in `gs` stays null.
    if (out.dtype !== 'float32') return;
    out.requiresGrad = true;
    out._node = node;
    if (k > 0) outputIndices.set(out, k);
  });
  return outs;
}

/**
 * Frees the temporaries a composite op made, except those the result's graph still reads.
 * Walks the graph from `out` back through tensors created during the op (ids only grow, so
 * anything older than the first temporary is outside it) and disposes the unreached ones.
 */
export function releaseIntermediates(
  out: Tensor | readonly Tensor[],
  temps: readonly Tensor[],
): void {
  if (temps.length === 0) return;
  const start = Math.min(...temps.map((t) => t.id));
  const outs: Tensor[] = Array.isArray(out) ? [...(out as Tensor[])] : [out as Tensor];
  const reached = new Set<Tensor>(outs);
  const stack = [...outs];
  while (stack.length) {
    const node = stack.pop()!._node;
    if (!node) continue;
    for (const t of [...node.inputs, ...node.saved]) {
      if (t && t.id >= start && !reached.has(t)) {
        reached.add(t);
        stack.push(t);
      }
    }
  }
  for (const t of temps) if (!reached.has(t)) t.dispose();
}
