// How an op records itself for reverse mode: its output gets a GradNode holding the inputs
// and a backward closure that maps the output's gradient to the inputs' gradients. The op's
// forward and backward are written side by side in the op's own function (micrograd style).
import type { Tensor } from '../tensor/tensor.js';

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
}

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording a graph (like `torch.no_grad()`); async functions too. */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  let result: T;
  try {
    result = fn();
  } catch (e) {
    gradEnabled = prev;
    throw e;
  }
  if (result instanceof Promise) {
    return result.finally(() => (gradEnabled = prev)) as T;
  }
  gradEnabled = prev;
  return result;
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
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  // Inputs that need no gradient may still be read by the backward (mul reads the other factor).
  const constants = inputs.filter((t) => !t.requiresGrad);
  out._node = {
    name,
    inputs: inputs.map((t) => (t.requiresGrad ? t : null)),
    backward,
    saved: constants.length ? [...constants, ...saved] : saved,
  };
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
