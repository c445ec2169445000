// Fused recurrent cells (crate/src/kernels/rnn.rs): one kernel call per timestep runs the
// recurrent GEMM and all the gate math, and one per step runs it backward. The input projection
// `gatesX = x · W_ihᵀ + b_ih` is the caller's (for a layer: one GEMM over all steps), so a cell
// takes it precomputed. PyTorch's layouts: W_hh is [G·H, H], gates in order LSTM (i, f, g, o),
// GRU (r, z, n).
//
// The backward kernels return the gradient of the pre-activation gates; the weight gradients
// are GEMMs over them (`dW_hh = dgatesᵀ · h_prev`), so a layer computes each as one GEMM over
// all steps instead of T small ones.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { wasm } from '../wasm/core.js';
import { matmulScratch } from '../wasm/heap.js';
import { Tensor } from '../tensor/tensor.js';
import { record, recordMulti } from '../autograd/node.js';
import { copyStrided } from './copy.js';
import { sum } from './reduce.js';

/** Checks a cell's operands; returns `[batch, hidden]`. */
function checkCell(
  op: string,
  gates: number,
  gatesX: Tensor | null,
  h: Tensor,
  wHh: Tensor,
  bHh: Tensor | null,
  c: Tensor | null = null,
): [number, number] {
  const named: [string, Tensor | null][] = [
    ['gatesX', gatesX],
    ['h', h],
    ['c', c],
    ['wHh', wHh],
    ['bHh', bHh],
  ];
  for (const [name, t] of named) {
    if (t && t.dtype !== 'float32')
      throw new DTypeError(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  if (h.ndim !== 2) throw new ShapeError(`${op}: h must be [batch, hidden], got ${fmt(h.shape)}`);
  const [batch, hidden] = h.shape;
  const want = (t: Tensor | null, shape: number[]): boolean =>
    t === null || (t.ndim === shape.length && t.shape.every((s, i) => s === shape[i]));
  const ok =
    want(gatesX, [batch, gates * hidden]) &&
    want(c, [batch, hidden]) &&
    want(wHh, [gates * hidden, hidden]) &&
    want(bHh, [gates * hidden]);
  if (!ok) {
    throw new ShapeError(
      `${op}: expected ${gatesX ? `gatesX [${batch}, ${gates * hidden}], ` : ''}` +
        `${c ? `c [${batch}, ${hidden}], ` : ''}wHh [${gates * hidden}, ${hidden}]` +
        `${bHh ? `, bHh [${gates * hidden}]` : ''} for h ${fmt(h.shape)}; got ` +
        `${gatesX ? `gatesX ${fmt(gatesX.shape)}, ` : ''}${c ? `c ${fmt(c.shape)}, ` : ''}` +
        `wHh ${fmt(wHh.shape)}${bHh ? `, bHh ${fmt(bHh.shape)}` : ''}`,
    );
  }
  return [batch, hidden];
}

const ptr = (t: Tensor | null): number => (t ? t.ptr : 0);

/** `Σ_rows dgates` as the bias gradient, and `dgatesᵀ · hPrev` as W_hh's. */
function weightGrads(
  dgates: Tensor,
  hPrev: Tensor,
  wHh: Tensor,
  bHh: Tensor | null,
): [Tensor | null, Tensor | null] {
  let gw: Tensor | null = null;
  if (wHh.requiresGrad) {
    const [g, hidden] = wHh.shape;
    gw = Tensor.empty(wHh.shape, 'float32');
    gemm(dgates, 0, [1, g], hPrev, 0, [hidden, 1], gw, 0, g, dgates.shape[0], hidden, false);
  }
  const gb = bHh?.requiresGrad ? sum(dgates, 0) : null;
  return [gw, gb];
}

function zerosF32(shape: number[]): Tensor {
  const t = Tensor.empty(shape, 'float32');
  wasm().fill_u32(t.ptr, t.size, 0);
  return t;
}

/**
 * One LSTM step from the precomputed input projection `gatesX` `[batch, 4H]` (`x · W_ihᵀ +
 * b_ih`), the state `h`, `c` `[batch, H]`, `wHh` `[4H, H]` and `bHh` `[4H]` (or null): returns
 * `[h', c']` as ONE autograd node whose backward gets both gradients at once.
 */
export function lstmCell(
  gatesX: Tensor,
  h: Tensor,
  c: Tensor,
  wHh: Tensor,
  bHh: Tensor | null = null,
): [Tensor, Tensor] {
  const [batch, hidden] = checkCell('lstmCell', 4, gatesX, h, wHh, bHh, c);
  const hOut = Tensor.empty([batch, hidden], 'float32');
  const cOut = Tensor.empty([batch, hidden], 'float32');
  const act = Tensor.empty([batch, 4 * hidden], 'float32');
  const pre = Tensor.empty([batch, 4 * hidden], 'float32');
  const core = wasm();
  if (batch * hidden > 0) {
    core.lstm_cell_f32(
      ...[gatesX.ptr, h.ptr, c.ptr, wHh.ptr, ptr(bHh), hOut.ptr, cOut.ptr, act.ptr, pre.ptr],
      ...[batch, hidden, 0, batch, matmulScratch()],
    );
  }
  pre.dispose();
  const inputs = bHh ? [gatesX, h, c, wHh, bHh] : [gatesX, h, c, wHh];
  const outs = recordMulti(
    [hOut, cOut] as [Tensor, Tensor],
    'lstmCell',
    inputs,
    ([dh, dc]) => {
      const dgates = Tensor.empty([batch, 4 * hidden], 'float32');
      const dhPrev = Tensor.empty([batch, hidden], 'float32');
      const dcPrev = Tensor.empty([batch, hidden], 'float32');
      if (batch * hidden > 0) {
        wasm().lstm_cell_bwd_f32(
          ...[ptr(dh), ptr(dc), act.ptr, c.ptr, cOut.ptr, wHh.ptr, dgates.ptr, dhPrev.ptr],
          ...[dcPrev.ptr, batch, hidden, 0, batch, 0, matmulScratch()],
        );
      }
      const [gw, gb] = weightGrads(dgates, h, wHh, bHh);
      const grads = [
        gatesX.requiresGrad ? dgates : null,
        h.requiresGrad ? dhPrev : null,
        c.requiresGrad ? dcPrev : null,
        gw,
        gb,
      ];
      for (const t of [dgates, dhPrev, dcPrev]) if (!grads.includes(t)) t.dispose();
      return bHh ? grads : grads.slice(0, 4);
    },
    [act, cOut],
  );
  if (!hOut.requiresGrad) act.dispose(); // nothing was recorded, so nothing reads it
  return outs;
}

/**
 * One GRU step (PyTorch's formulation, `n = tanh(gx_n + r * (W_hn h + b_hn))`) from
 * `gatesX` `[batch, 3H]` (with `b_ih`), `h` `[batch, H]`, `wHh` `[3H, H]`, `bHh` `[3H]` or null.
 */
export function gruCell(gatesX: Tensor, h: Tensor, wHh: Tensor, bHh: Tensor | null = null): Tensor {
  const [batch, hidden] = checkCell('gruCell', 3, gatesX, h, wHh, bHh);
  const hOut = Tensor.empty([batch, hidden], 'float32');
  const act = Tensor.empty([batch, 4 * hidden], 'float32');
  const pre = Tensor.empty([batch, 3 * hidden], 'float32');
  if (batch * hidden > 0) {
    wasm().gru_cell_f32(
      ...[gatesX.ptr, h.ptr, wHh.ptr, ptr(bHh), hOut.ptr, act.ptr, pre.ptr],
      ...[batch, hidden, 0, batch, matmulScratch()],
    );
  }
  pre.dispose();
  const inputs = bHh ? [gatesX, h, wHh, bHh] : [gatesX, h, wHh];
  const out = record(
    hOut,
    'gruCell',
    inputs,
    (dh) => {
      const dgx = Tensor.empty([batch, 3 * hidden], 'float32');
      const dgh = Tensor.empty([batch, 3 * hidden], 'float32');
      const dhPrev = Tensor.empty([batch, hidden], 'float32');
      if (batch * hidden > 0) {
        wasm().gru_cell_bwd_f32(
          ...[dh.ptr, act.ptr, h.ptr, wHh.ptr, dgx.ptr, dgh.ptr, dhPrev.ptr],
          ...[batch, hidden, 0, batch, matmulScratch()],
        );
      }
      const [gw, gb] = weightGrads(dgh, h, wHh, bHh);
      dgh.dispose();
      const grads = [gatesX.requiresGrad ? dgx : null, h.requiresGrad ? dhPrev : null, gw, gb];
      for (const t of [dgx, dhPrev]) if (!grads.includes(t)) t.dispose();
      return bHh ? grads : grads.slice(0, 3);
    },
    [act],
  );
  if (!out.requiresGrad) act.dispose();
  return out;
}

export type RnnNonlinearity = 'tanh' | 'relu';

/**
 * One Elman step, `act(gatesX + bHh + h · W_hhᵀ)` with `act` tanh or relu (PyTorch's
 * `nonlinearity`), from `gatesX` `[batch, H]` (with `b_ih`), `h`, `wHh` `[H, H]`, `bHh` `[H]`.
 */
export function rnnCell(
  gatesX: Tensor,
  h: Tensor,
  wHh: Tensor,
  bHh: Tensor | null = null,
  nonlinearity: RnnNonlinearity = 'tanh',
): Tensor {
  if (nonlinearity !== 'tanh' && nonlinearity !== 'relu') {
    throw new ValueError(
      `rnnCell: nonlinearity must be 'tanh' or 'relu', got '${String(nonlinearity)}'`,
    );
  }
  const [batch, hidden] = checkCell('rnnCell', 1, gatesX, h, wHh, bHh);
  const relu = nonlinearity === 'relu' ? 1 : 0;
  const hOut = Tensor.empty([batch, hidden], 'float32');
  const pre = Tensor.empty([batch, hidden], 'float32');
  if (batch * hidden > 0) {
    wasm().rnn_cell_f32(
      ...[gatesX.ptr, h.ptr, wHh.ptr, ptr(bHh), hOut.ptr, pre.ptr, relu],
      ...[batch, hidden, 0, batch, matmulScratch()],
    );
  }
  pre.dispose();
  const inputs = bHh ? [gatesX, h, wHh, bHh] : [gatesX, h, wHh];
  return record(
    hOut,
    'rnnCell',
    inputs,
    (dh) => {
      const dpre = Tensor.empty([batch, hidden], 'float32');
      const dhPrev = Tensor.empty([batch, hidden], 'float32');
      if (batch * hidden > 0) {
        wasm().rnn_cell_bwd_f32(
          ...[dh.ptr, hOut.ptr, wHh.ptr, dpre.ptr, dhPrev.ptr, relu],
          ...[batch, hidden, 0, batch, matmulScratch()],
        );
      }
      const [gw, gb] = weightGrads(dpre, h, wHh, bHh);
      const grads = [gatesX.requiresGrad ? dpre : null, h.requiresGrad ? dhPrev : null, gw, gb];
      for (const t of [dpre, dhPrev]) if (!grads.includes(t)) t.dispose();
      return bHh ? grads : grads.slice(0, 3);
    },
    [hOut],
  );
}

export interface LstmLayerOptions {
  /** Run the sequence from its last step to its first (the backward direction of a BiLSTM). */
  reverse?: boolean;
}

/**
 * One LSTM layer and direction over a sequence, as ONE autograd node: `x` `[T, batch, input]`,
 * `h0`, `c0` `[batch, H]`, `wIh` `[4H, input]`, `wHh` `[4H, H]`, biases `[4H]` or null.
 * Returns `[output [T, batch, H], hN, cN]` like PyTorch's `output, (h_n, c_n)`.
 *
 * The input projection of all steps is one GEMM; the steps run the fused kernel in a loop. The
 * backward runs the fused backward per step into a `[T, batch, 4H]` gate-gradient buffer, then
 * `dx`, `dW_ih` and `dW_hh` are one GEMM each over all steps (`dW_hh` plus one small GEMM for
 * the step that reads h0) and both bias gradients one row sum. The graph keeps the inputs and
 * the saved activations (gates, cell states, outputs) only; the projection is freed at once.
 */
export function lstmLayer(
  x: Tensor,
  h0: Tensor,
  c0: Tensor,
  wIh: Tensor,
  wHh: Tensor,
  bIh: Tensor | null = null,
  bHh: Tensor | null = null,
  opts: LstmLayerOptions = {},
): [Tensor, Tensor, Tensor] {
  const op = 'lstmLayer';
  const [batch, hidden] = checkCell(op, 4, null, h0, wHh, bHh, c0);
  for (const [name, t] of [
    ['x', x],
    ['wIh', wIh],
    ['bIh', bIh],
  ] as const) {
    if (t && t.dtype !== 'float32')
      throw new DTypeError(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  const G = 4 * hidden;
  if (x.ndim !== 3 || x.shape[0] === 0 || x.shape[1] !== batch) {
    throw new ShapeError(
      `${op}: x must be [seq (> 0), batch, input] with batch ${batch} (from h0 ${fmt(h0.shape)}), got ${fmt(x.shape)}`,
    );
  }
  const [T, , input] = x.shape;
  if (
    wIh.ndim !== 2 ||
    wIh.shape[0] !== G ||
    wIh.shape[1] !== input ||
    (bIh !== null && (bIh.ndim !== 1 || bIh.shape[0] !== G))
  ) {
    throw new ShapeError(
      `${op}: expected wIh [${G}, ${input}]${bIh ? ` and bIh [${G}]` : ''} for x ${fmt(x.shape)} and ` +
        `hidden ${hidden}; got wIh ${fmt(wIh.shape)}${bIh ? `, bIh ${fmt(bIh.shape)}` : ''}`,
    );
  }
  const reverse = opts.reverse === true;
  const BH = batch * hidden;
  const rows = T * batch;
  const core = wasm();
  const scratch = matmulScratch();
  /** The time index of the s-th step run. */
  const time = (s: number): number => (reverse ? T - 1 - s : s);

  // The input projection of all steps: gx = x · W_ihᵀ + b_ih, one GEMM.
  const gx = Tensor.empty([T, batch, G], 'float32');
  if (bIh) copyStrided(bIh, 0, gx, 0, [rows, G], [0, 1], [G, 1]);
  else core.fill_u32(gx.ptr, gx.size, 0);
  gemm(x, 0, [input, 1], wIh, 0, [1, input], gx, 0, rows, input, G, true);

  const y = Tensor.empty([T, batch, hidden], 'float32');
  const cs = Tensor.empty([T, batch, hidden], 'float32');
  const act = Tensor.empty([T, batch, G], 'float32');
  const pre = Tensor.empty([batch, G], 'float32');
  const hN = Tensor.empty([batch, hidden], 'float32');
  const cN = Tensor.empty([batch, hidden], 'float32');
  const last = time(T - 1);
  if (BH > 0) {
    for (let s = 0; s < T; s++) {
      const t = time(s);
      const hPrev = s === 0 ? h0.ptr : y.ptr + 4 * time(s - 1) * BH;
      const cPrev = s === 0 ? c0.ptr : cs.ptr + 4 * time(s - 1) * BH;
      core.lstm_cell_f32(
        ...[gx.ptr + 4 * t * batch * G, hPrev, cPrev, wHh.ptr, ptr(bHh)],
        ...[y.ptr + 4 * t * BH, cs.ptr + 4 * t * BH, act.ptr + 4 * t * batch * G, pre.ptr],
        ...[batch, hidden, 0, batch, scratch],
      );
    }
    copyStrided(y, last * BH, hN, 0, [BH], [1], [1]);
    copyStrided(cs, last * BH, cN, 0, [BH], [1], [1]);
  }
  gx.dispose();
  pre.dispose();

  const inputs = [x, h0, c0, wIh, wHh, ...(bIh ? [bIh] : []), ...(bHh ? [bHh] : [])];
  const outs = recordMulti(
    [y, hN, cN] as [Tensor, Tensor, Tensor],
    op,
    inputs,
    ([dy, dhN, dcN]) => {
      const k = wasm();
      const sc = matmulScratch();
      const dgates = zerosF32([T, batch, G]);
      // dH[t] is the gradient reaching y[t]: dy (+ dhN at the last step), to which each step's
      // backward adds dh_prev for the step before it (the kernel accumulates in place).
      const dH = dy ? clone2(dy) : zerosF32([T, batch, hidden]);
      if (dhN && BH > 0) k.add_inplace_f32(dH.ptr + 4 * last * BH, dhN.ptr, BH);
      const dh0 = zerosF32([batch, hidden]);
      const dcBufs = [zerosF32([batch, hidden]), zerosF32([batch, hidden])];
      let dcIn = ptr(dcN);
      if (BH > 0) {
        for (let s = T - 1; s >= 0; s--) {
          const t = time(s);
          const cPrev = s === 0 ? c0.ptr : cs.ptr + 4 * time(s - 1) * BH;
          const dhPrev = s === 0 ? dh0.ptr : dH.ptr + 4 * time(s - 1) * BH;
          const dcOut = dcBufs[s % 2].ptr;
          k.lstm_cell_bwd_f32(
            ...[dH.ptr + 4 * t * BH, dcIn, act.ptr + 4 * t * batch * G, cPrev, cs.ptr + 4 * t * BH],
            ...[wHh.ptr, dgates.ptr + 4 * t * batch * G, dhPrev, dcOut],
            ...[batch, hidden, 0, batch, s > 0 ? 1 : 0, sc],
          );
          dcIn = dcOut;
        }
      }
      dH.dispose();
      dcBufs[1].dispose();
      const dc0 = dcBufs[0];
      let gx2: Tensor | null = null;
      if (x.requiresGrad) {
        gx2 = Tensor.empty(x.shape, 'float32');
        gemm(dgates, 0, [G, 1], wIh, 0, [input, 1], gx2, 0, rows, G, input, false);
      }
      let gwIh: Tensor | null = null;
      if (wIh.requiresGrad) {
        gwIh = Tensor.empty(wIh.shape, 'float32');
        gemm(dgates, 0, [1, G], x, 0, [input, 1], gwIh, 0, G, rows, input, false);
      }
      let gwHh: Tensor | null = null;
      if (wHh.requiresGrad) {
        // Σ_t dgates[t]ᵀ · h_prev(t): the steps after the first read y of the step before (one
        // GEMM over contiguous rows), the first step reads h0.
        gwHh = Tensor.empty(wHh.shape, 'float32');
        const n = (T - 1) * batch;
        const [dOff, yOff, firstOff] = reverse ? [0, batch * hidden, n * G] : [batch * G, 0, 0];
        gemm(dgates, dOff, [1, G], y, yOff, [hidden, 1], gwHh, 0, G, n, hidden, false);
        gemm(dgates, firstOff, [1, G], h0, 0, [hidden, 1], gwHh, 0, G, batch, hidden, true);
      }
      const needBias = bIh?.requiresGrad || bHh?.requiresGrad;
      const gb = needBias ? sum(dgates._alias([rows, G]), 0) : null;
      const grads: (Tensor | null)[] = [
        gx2,
        h0.requiresGrad ? dh0 : null,
        c0.requiresGrad ? dc0 : null,
        gwIh,
        gwHh,
      ];
      if (bIh) grads.push(bIh.requiresGrad ? gb : null);
      if (bHh) grads.push(bHh.requiresGrad ? (bIh?.requiresGrad ? clone2(gb!) : gb) : null);
      if (gb && !grads.includes(gb)) gb.dispose();
      for (const t of [dgates, dh0, dc0]) if (!grads.includes(t)) t.dispose();
      return grads;
    },
    [act, cs, y],
  );
  if (!y.requiresGrad) {
    act.dispose();
    cs.dispose();
  }
  return outs;
}

type Strides2 = readonly [number, number];

/** `C (m×n) (+)= op(A) (m×k) · op(B) (k×n)` at element offsets, operands read through strides. */
function gemm(
  a: Tensor,
  aOff: number,
  aS: Strides2,
  b: Tensor,
  bOff: number,
  bS: Strides2,
  c: Tensor,
  cOff: number,
  m: number,
  k: number,
  n: number,
  accumulate: boolean,
): void {
  if (m === 0 || n === 0) return;
  wasm().matmul_f32(
    ...[a.ptr + 4 * aOff, b.ptr + 4 * bOff, c.ptr + 4 * cOff, m, k, n],
    ...[aS[0], aS[1], bS[0], bS[1], accumulate ? 1 : 0, matmulScratch()],
  );
}

/** A plain (unrecorded) copy. */
function clone2(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape, 'float32');
  copyStrided(t, 0, out, 0, [t.size], [1], [1]);
  return out;
}
