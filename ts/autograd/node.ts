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
 * Frees intermediates of a composite op unless a recorded graph still needs them (then the
 * enclosing scope, or the garbage collector, frees them with the graph).
 */
export function releaseIntermediates(...tensors: Tensor[]): void {
  for (const t of tensors) if (!t.requiresGrad) t.dispose();
}
