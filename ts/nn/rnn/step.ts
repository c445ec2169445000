// One timestep of each recurrent cell (nn.LSTMCell etc., and nn.LSTM with projSize), given the
// input half of the gates already projected (`gx = x·W_ihᵀ + b_ih`, computed for all timesteps
// at once by the caller). Each runs the fused cell kernel pair
// (ts/ops/rnn.ts: the recurrent GEMM, every gate and the state update in one call, one autograd
// node per step); only the LSTM with a projection (`projSize`) composes ops, since its state `h`
// is narrower than the gates' hidden width. Gate orders are PyTorch's: LSTM (i, f, g, o),
// GRU (r, z, n).
import { Tensor } from '../../tensor/tensor.js';
import { gruCell, lstmCell, rnnCell } from '../../ops/rnn.js';
import { linear } from '../functional.js';

/** h' = tanh(gx + h·W_hhᵀ + b_hh). */
export function rnnTanhCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  return rnnCell(gx, h, wHh, bHh, 'tanh');
}

/** h' = relu(gx + h·W_hhᵀ + b_hh). */
export function rnnReluCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  return rnnCell(gx, h, wHh, bHh, 'relu');
}

/**
 * c' = σ(f)·c + σ(i)·tanh(g), h' = σ(o)·tanh(c'), then h' = h'·W_hrᵀ when the LSTM projects
 * (`projSize`). `h` has the projected width, `c` the hidden width.
 */
export function lstmCellStep(
  gx: Tensor,
  h: Tensor,
  c: Tensor,
  wHh: Tensor,
  bHh: Tensor | null,
  wHr: Tensor | null = null,
): [Tensor, Tensor] {
  if (wHr === null) return lstmCell(gx, h, c, wHh, bHh);
  const [i, f, g, o] = gx.add(linear(h, wHh, bHh)).chunk(4, 1);
  const c2 = f.sigmoid().mul(c).add(i.sigmoid().mul(g.tanh()));
  const h2 = o.sigmoid().mul(c2.tanh());
  return [linear(h2, wHr), c2];
}

/**
 * r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n), h' = (1 - z)·n + z·h,
 * where gh = h·W_hhᵀ + b_hh: b_hn stays inside the reset gate's product, as in PyTorch.
 */
export function gruCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  return gruCell(gx, h, wHh, bHh);
}
