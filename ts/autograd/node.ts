// How an op records itself for reverse mode: its output gets a GradNode holding the inputs
// and a backward closure that maps the output's gradient to the inputs' gradients. The op's
// forward and backward are written side by side in the op's own function (micrograd style).
import type { Tensor } from '../tensor/tensor.js';
import { context, isAsyncFunction, runAsync } from '../tensor/scope.js';

/** Gradients for an op's inputs, in input order; null where no gradient flows. */
export type Grads = readonly (Tensor | null | undefined)[];

export interface GradNode {
  /** The op's name, for error messages and `t.gradFn`. */
  readonly name: string;
  /** The op's inputs; entries that need no gradient are null. */
  readonly inputs: readonly (Tensor | null)[];
  /**
   * Maps the output's gradient to one gradient per input (same shapes as the inputs). Each
   * result is a new tensor or `g` itself; the walk disposes them once they are accumulated.
   */
  readonly backward: (g: Tensor) => Grads;
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
  if (!context().grad || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  // Inputs that need no gradient may still be read by the backward (mul reads the other factor).
  const constants = inputs.filter((t) => !t.requiresGrad);
  const node: GradNode = {
    name,
    inputs: inputs.map((t) => (t.requiresGrad ? t : null)),
    backward,
    saved: constants.length ? [...constants, ...saved] : saved,
    versions: [],
    freed: false,
  };
  (node as unknown as { versions: number[] }).versions = checkedTensors(node).map((t) =>
    t.isDisposed ? -1 : t.storage().version,
  );
  out._node = node;
  return out;
}

/**
 * Frees the temporaries a composite op made, except those the result's graph still reads.
 * Walks the graph from `out` back through tensors created during the op (ids only grow, so
 * anything older than the first temporary is outside it) and disposes the unreached ones.
 */
export function releaseIntermediates(out: Tensor, temps: readonly Tensor[]): void {
  if (temps.length === 0) return;
  const start = Math.min(...temps.map((t) => t.id));
  const reached = new Set<Tensor>([out]);
  const stack = [out];
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
