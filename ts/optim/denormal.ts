// torch.set_flush_denormal for the optimizers: WebAssembly has no flush-to-zero mode, so with it
// on, each update's new state has its subnormals set to zero (crate/src/kernels/optim.rs
// `flush_subnormal_f32`), which is where they build up in training.
import type { Tensor } from '../tensor/tensor.js';
import { splitFlat } from '../ops/parallel.js';

let flushing = false;

/**
 * `torch.set_flush_denormal`: with `mode` true, after every optimizer update the optimizer's
 * state (Adam's moments, SGD's and RMSprop's momentum and averages, Adagrad's sums) has each
 * subnormal float (magnitude below 2^-126) set to zero. The moments of a weight whose gradient
 * stays zero (a dead unit) decay geometrically until they are subnormal, and from then on every
 * update of them costs the CPU a microcode assist per operation: an MLP's Adam step took twice
 * as long after 700 steps (PyTorch on the CPU slows the same way by default). PyTorch's switch sets
 * the CPU's flush-to-zero mode for every op; nabla cannot from WebAssembly, so other ops keep
 * IEEE subnormals. Off by default, as in PyTorch. Returns true (supported).
 */
export function setFlushDenormal(mode: boolean): boolean {
  flushing = mode;
  return true;
}

/** Zeroes the subnormals of an optimizer's state buffers when `setFlushDenormal(true)`. */
export function flushState(buffers: Iterable<Tensor>): void {
  if (!flushing) return;
  for (const t of buffers) {
    splitFlat('flush_subnormal_f32', t.size, (at, n) => [t.ptr + at, n]);
  }
}
