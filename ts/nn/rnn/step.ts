// One timestep of each recurrent cell, given the input half of the gates already projected
// (`gx = x·W_ihᵀ + b_ih`, computed for all timesteps at once by the caller). Every module and
// cell goes through these four functions only, so a fused kernel for one step can replace a
// body here without touching the module logic. Gate orders are PyTorch's: LSTM (i, f, g, o),
// GRU (r, z, n).
import { Tensor } from '../../tensor/tensor.js';
import { linear } from '../functional.js';

/** h' = tanh(gx + h·W_hhᵀ + b_hh). */
export function rnnTanhCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  return gx.add(linear(h, wHh, bHh)).tanh();
}

/** h' = relu(gx + h·W_hhᵀ + b_hh). */
export function rnnReluCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  return gx.add(linear(h, wHh, bHh)).relu();
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
  const [i, f, g, o] = gx.add(linear(h, wHh, bHh)).chunk(4, 1);
  const c2 = f.sigmoid().mul(c).add(i.sigmoid().mul(g.tanh()));
  const h2 = o.sigmoid().mul(c2.tanh());
  return [wHr ? linear(h2, wHr) : h2, c2];
}

/**
 * r = σ(gx_r + gh_r), z = σ(gx_z + gh_z), n = tanh(gx_n + r·gh_n), h' = (1 - z)·n + z·h,
 * where gh = h·W_hhᵀ + b_hh: b_hn stays inside the reset gate's product, as in PyTorch.
 */
export function gruCellStep(gx: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null): Tensor {
  const [xr, xz, xn] = gx.chunk(3, 1);
  const [hr, hz, hn] = linear(h, wHh, bHh).chunk(3, 1);
  const r = xr.add(hr).sigmoid();
  const z = xz.add(hz).sigmoid();
  const n = xn.add(r.mul(hn)).tanh();
  return n.add(z.mul(h.sub(n)));
}
