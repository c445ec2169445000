// Scaled dot-product attention: one fused kernel pair (crate/src/kernels/attention.rs) that
// never builds the [T, S] weights; the forward saves only the output and each row's
// log-sum-exp, and the backward recomputes the weights block by block. Dropout, and a float
// mask that itself needs a gradient, take the composed path softmax(q kᵀ · scale + mask) v.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { numel } from '../tensor/shape.js';
import { noGrad, record, releaseIntermediates } from '../autograd/node.js';
import { wasm } from '../wasm/core.js';
import { runSplitOrWhole } from './parallel.js';
import { full } from './creation.js';
import { where } from './elementwise.js';
import { softmax } from './softmax.js';
import { drawRandom } from './random.js';

export interface SdpaOptions {
  /**
   * Broadcastable to `[...batch, T, S]`. int32 (PyTorch 2's bool mask): non-zero marks a
   * position to KEEP (attend to), zero one to hide. float32: added to the scores (`-Infinity`
   * hides a position). A row with every position hidden gives NaN, as PyTorch 2's math path.
   */
  attnMask?: Tensor | null;
  /** Row `i` attends to columns `j <= i` only (top-left aligned); not allowed with attnMask. */
  isCausal?: boolean;
  /** Dropout on the attention weights, applied whenever > 0 (as torch's functional form). */
  dropoutP?: number;
  /** Multiplies `q kᵀ`; default `1 / sqrt(E)`. */
  scale?: number | null;
}

const OP = 'scaledDotProductAttention';

/**
 * `softmax(q kᵀ · scale + mask) v` over the last two dims: `q [..., T, E]`, `k [..., S, E]`,
 * `v [..., S, Ev]` with equal batch dims `...` → `[..., T, Ev]`. With `dropoutP > 0` the
 * weights go through `nn.functional.dropout` (nabla's RNG) on the composed path.
 */
export function scaledDotProductAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  opts: SdpaOptions = {},
): Tensor {
  const mask = opts.attnMask ?? null;
  const causal = opts.isCausal ?? false;
  const p = opts.dropoutP ?? 0;
  for (const [name, t] of [
    ['query', q],
    ['key', k],
    ['value', v],
  ] as const) {
    if (t.dtype !== 'float32') {
      throw new DTypeError(`${OP}: ${name} must be float32, got ${t.dtype}`);
    }
    if (t.ndim < 2)
      throw new ShapeError(`${OP}: ${name} must be at least 2-D, got ${fmt(t.shape)}`);
  }
  const batch = q.shape.slice(0, -2);
  const [T, E] = q.shape.slice(-2);
  const [S, Ek] = k.shape.slice(-2);
  const [Sv, Ev] = v.shape.slice(-2);
  const sameBatch = (t: Tensor): boolean =>
    t.ndim === q.ndim && batch.every((b, i) => b === t.shape[i]);
  if (!sameBatch(k) || !sameBatch(v) || Ek !== E || Sv !== S) {
    throw new ShapeError(
      `${OP}: query ${fmt(q.shape)}, key ${fmt(k.shape)} and value ${fmt(v.shape)} must be ` +
        `[..., T, E], [..., S, E] and [..., S, Ev] with the same batch dims`,
    );
  }
  if (!(p >= 0 && p < 1)) throw new ValueError(`${OP}: dropoutP must be in [0, 1), got ${p}`);
  const scale = opts.scale ?? 1 / Math.sqrt(E);
  if (!Number.isFinite(scale)) throw new ValueError(`${OP}: scale must be finite, got ${scale}`);
  if (mask && causal) {
    throw new ValueError(`${OP}: pass either attnMask or isCausal, not both`);
  }
  const full4 = [...batch, T, S];
  if (mask) {
    if (mask.dtype !== 'float32' && mask.dtype !== 'int32') {
      throw new DTypeError(
        `${OP}: attnMask must be int32 (keep) or float32 (added), got ${mask.dtype}`,
      );
    }
    const m = mask.shape;
    const ok =
      m.length <= full4.length &&
      m.every((s, i) => s === 1 || s === full4[full4.length - m.length + i]);
    if (!ok) {
      throw new ShapeError(
        `${OP}: attnMask ${fmt(m)} does not broadcast to the scores' shape ${fmt(full4)}`,
      );
    }
  }
  if (p > 0 || S === 0 || (mask?.requiresGrad ?? false)) {
    return composed(q, k, v, mask, causal, p, scale);
  }
  return fused(q, k, v, mask, causal, scale, batch, [T, S, E, Ev]);
}

/** An int32 keep-mask as the additive float mask it stands for (0 keep, -inf hide). */
function additive(mask: Tensor): Tensor {
  return mask.dtype === 'float32' ? mask : noGrad(() => where(mask, 0, -Infinity));
}

/**
 * Fused attention from this many multiply-adds up is split over the pool: its kernels pack
 * nothing, so a share only has to outweigh a dispatch (about a microsecond).
 */
const SPLIT_MIN_MACS = 1 << 19;

/**
 * Runs an attention kernel over items [0, length), split over the pool when there is enough
 * work; each thread gets its own `sdpa_scratch_len(T)` floats. `args(begin, end, scratch)`.
 */
function splitItems(
  fn: 'sdpa_fwd_f32' | 'sdpa_bwd_f32',
  length: number,
  macs: number,
  T: number,
  args: (begin: number, end: number, scratch: number) => number[],
): void {
  runSplitOrWhole({
    fn,
    length,
    align: 1,
    work: macs,
    minWork: SPLIT_MIN_MACS,
    redo: true, // every item's outputs are overwritten
    scratch: wasm().sdpa_scratch_len(T),
    args: (b, e, _, scratch) => args(b, e, scratch),
  });
}

function composed(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  causal: boolean,
  p: number,
  scale: number,
): Tensor {
  const [T, S] = [q.shape[q.ndim - 2], k.shape[k.ndim - 2]];
  let scores = q.matmul(k.transpose(-2, -1)).mul(scale);
  if (causal) {
    const hide = noGrad(() => full([T, S], -Infinity).triu(1));
    scores = scores.add(hide);
  }
  if (mask) scores = scores.add(additive(mask));
  let w = softmax(scores, -1);
  if (p > 0) w = dropWeights(w, p);
  return w.matmul(v);
}

/**
 * Zeroes each weight with probability `p` and scales the rest by 1/(1-p), from nabla's RNG
 * stream exactly as `nn.functional.dropout` draws (ops do not import nn).
 */
function dropWeights(w: Tensor, p: number): Tensor {
  const mask = Tensor.empty(w.shape, 'float32');
  drawRandom('rng_bernoulli_f32', mask.ptr, mask.size, 1 - p, 1 / (1 - p));
  const out = w.mul(mask);
  releaseIntermediates(out, [mask]);
  return out;
}

function fused(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  mask: Tensor | null,
  causal: boolean,
  scale: number,
  batch: number[],
  [T, S, E, Ev]: number[],
): Tensor {
  // Batch dims fold into (B, H) with H the last one, the mask's strides follow.
  const H = batch.length ? batch[batch.length - 1] : 1;
  const BH = numel(batch);
  const core = wasm();
  let m = mask ? additive(mask) : null;
  let strides = [0, 0, 0, 0];
  if (m) {
    // Right-align the mask to [B..., H, T, S]; leading batch dims must collapse to one stride.
    const lead = batch.slice(0, -1);
    let mLead = m.shape.slice(0, Math.max(0, m.ndim - 3));
    while (mLead.length < lead.length) mLead = [1, ...mLead];
    const bcast = mLead.every((s) => s === 1);
    if (!bcast && lead.length > 1 && mLead.some((s, i) => s !== lead[i])) {
      const shape = [...lead, ...(m.ndim >= 3 ? m.shape.slice(-3) : [1, ...m.shape])];
      const prev = m;
      m = noGrad(() => prev.expand(shape));
      if (prev !== mask) prev.dispose();
    }
    const tail = m.ndim >= 3 ? m.shape.slice(-3) : [...Array(3 - m.ndim).fill(1), ...m.shape];
    const [mh, mt, ms] = tail;
    const bc = (size: number, stride: number): number => (size === 1 ? 0 : stride);
    const sS = 1;
    const sT = ms;
    const sH = mt * ms;
    const sB = mh * mt * ms;
    const leadSize = numel(m.shape.slice(0, Math.max(0, m.ndim - 3)));
    strides = [leadSize === 1 ? 0 : sB, bc(mh, sH), bc(mt, sT), bc(ms, sS)];
  }
  const out = Tensor.empty([...batch, T, Ev], 'float32');
  const lse = Tensor.empty([BH, T], 'float32');
  const [sb, sh, st, ss] = strides;
  const dims = [BH, H, T, S, E, Ev, scale, causal ? 1 : 0, sb, sh, st, ss] as const;
  const mp = m ? m.ptr : 0;
  const ml = m ? m.size : 0;
  const macs = BH * T * S * (E + Ev);
  if (BH * T > 0) {
    // Items are (batch·head, query block) pairs, each written by one thread.
    const items = BH * core.sdpa_query_blocks(T);
    splitItems('sdpa_fwd_f32', items, macs, T, (b, e, sc) => [
      ...[q.ptr, k.ptr, v.ptr, mp, ml, out.ptr, lse.ptr, sc, ...dims, b, e],
    ]);
  }
  const res = record(
    out,
    OP,
    [q, k, v],
    (g) => {
      const [gq, gk, gv] = [q, k, v].map((t) => Tensor.empty(t.shape, 'float32'));
      if (BH > 0 && T > 0) {
        // By batch·head: each zeroes and sums its own gradient rows.
        splitItems('sdpa_bwd_f32', BH, 2 * macs, T, (b, e, sc) => [
          ...[q.ptr, k.ptr, v.ptr, mp, ml, out.ptr, lse.ptr, g.ptr, gq.ptr, gk.ptr, gv.ptr],
          ...[sc, ...dims, b, e],
        ]);
      } else {
        for (const t of [gq, gk, gv]) wasm().fill_u32(t.ptr, t.size, 0);
      }
      return [q, k, v].map((t, i) => {
        const gt = [gq, gk, gv][i];
        if (t.requiresGrad) return gt;
        gt.dispose();
        return null;
      });
    },
    m ? [lse, m] : [lse],
  );
  // Without a graph nothing reads lse or a mask made here again.
  releaseIntermediates(res, m && m !== mask ? [lse, m] : [lse]);
  return res;
}
