// Fused recurrent cells (crate/src/kernels/rnn.rs): one kernel call per timestep runs the
// recurrent GEMM and all the gate math, and one per step runs it backward. The input projection
// `gatesX = x · W_ihᵀ + b_ih` is the caller's (for a layer: one GEMM over all steps), so a cell
// takes it precomputed. PyTorch's layouts: W_hh is [G·H, H], gates in order LSTM (i, f, g, o),
// GRU (r, z, n).
//
// The backward kernels return the gradient of the pre-activation gates; the weight gradients
// are GEMMs over them (`dW_hh = dgatesᵀ · h_prev`), so a layer computes each as one GEMM over
// all steps instead of T small ones.
//
// W_hh is constant over a sequence, so a layer packs its GEMM panels once per pass (`packWhh`)
// instead of every step re-packing them; a single cell passes 0 and the kernel packs per call.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { wasm } from '../wasm/core.js';
import { unsigned } from '../wasm/heap.js';
import { Tensor } from '../tensor/tensor.js';
import { record, recordMulti } from '../autograd/node.js';
import { copyStrided } from './copy.js';
import { zeros } from './creation.js';
import { gemm } from './matmul.js';
import { gemmScratch, runSplitOrWhole } from './parallel.js';
import type { PoolExport } from '../wasm/threads.js';
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

/**
 * Whether the layer ops pack W_hh once per pass. Both settings give the same bits (the test
 * of that, and before/after profiles, turn it off); not part of the public API.
 */
export const layerTuning = { prepackWhh: true };

/**
 * W_hh `[gates·H, H]` packed for the cell kernels' forward (`backward` false) or backward GEMM,
 * or null (per-call packing) when the layer has no rows or prepacking is off. The caller
 * disposes it after the step loop.
 */
function packWhh(wHh: Tensor, gates: number, hidden: number, backward: boolean): Tensor | null {
  if (!layerTuning.prepackWhh || wHh.size === 0) return null;
  const core = wasm();
  const b = backward ? 1 : 0;
  const packed = Tensor.empty([unsigned(core.rnn_w_hh_packed_len(gates, hidden, b))], 'float32');
  core.rnn_pack_w_hh_f32(wHh.ptr, gates, hidden, b, packed.ptr);
  return packed;
}

/**
 * A step's recurrent GEMM (rows · H · gates·H multiply-adds) from this size up is split by rows
 * over the pool. W_hh is packed once per layer, so a thread repeats no packing; measured on 2
 * cores (`npm run bench -- --only nabla --threads 2`, rnn workloads).
 */
const CELL_SPLIT_MIN_MACS = 1 << 19;

/**
 * Runs cell kernel `fn` over rows [0, rows) of one step, split by rows when the step is large
 * enough. Each row's GEMM and gate arithmetic is the same whichever thread runs it, so every
 * thread count gives the same bits. `args(begin, end, scratch)` builds the call; `redo` false
 * when the call accumulates into an output (see `Split.redo`).
 */
function cellRows(
  fn: PoolExport,
  rows: number,
  hidden: number,
  gates: number,
  args: (begin: number, end: number, scratch: number) => number[],
  redo = true,
): void {
  runSplitOrWhole({
    fn,
    length: rows,
    align: 4,
    work: rows * hidden * gates * hidden,
    minWork: CELL_SPLIT_MIN_MACS,
    args: (b, e, w) => args(b, e, gemmScratch(w)),
    redo,
  });
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
  if (batch * hidden > 0) {
    cellRows('lstm_cell_f32', batch, hidden, 4, (b, e, sc) => [
      ...[gatesX.ptr, h.ptr, c.ptr, wHh.ptr, 0, ptr(bHh), hOut.ptr, cOut.ptr, act.ptr, pre.ptr],
      ...[batch, hidden, b, e, sc],
    ]);
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
        cellRows('lstm_cell_bwd_f32', batch, hidden, 4, (b, e, sc) => [
          ...[ptr(dh), ptr(dc), act.ptr, c.ptr, cOut.ptr, wHh.ptr, 0, dgates.ptr, dhPrev.ptr],
          ...[dcPrev.ptr, batch, hidden, b, e, 0, sc],
        ]);
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
    cellRows('gru_cell_f32', batch, hidden, 3, (b, e, sc) => [
      ...[gatesX.ptr, h.ptr, wHh.ptr, 0, ptr(bHh), hOut.ptr, act.ptr, pre.ptr],
      ...[batch, hidden, b, e, sc],
    ]);
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
        cellRows('gru_cell_bwd_f32', batch, hidden, 3, (b, e, sc) => [
          ...[dh.ptr, act.ptr, h.ptr, wHh.ptr, 0, dgx.ptr, dgh.ptr, dhPrev.ptr],
          ...[batch, hidden, b, e, sc],
        ]);
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
    cellRows('rnn_cell_f32', batch, hidden, 1, (b, e, sc) => [
      ...[gatesX.ptr, h.ptr, wHh.ptr, 0, ptr(bHh), hOut.ptr, pre.ptr, relu],
      ...[batch, hidden, b, e, sc],
    ]);
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
        cellRows('rnn_cell_bwd_f32', batch, hidden, 1, (b, e, sc) => [
          ...[dh.ptr, hOut.ptr, wHh.ptr, 0, dpre.ptr, dhPrev.ptr, relu],
          ...[batch, hidden, b, e, sc],
        ]);
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
  /**
   * Rows still running at each step, non-increasing from `batch` (a packed batch sorted by
   * length, as `PackedSequence.batchSizes`): step t updates rows `[0, batchSizes[t])` only, the
   * other rows of the output stay zero, and `hN` holds each row's state after its last step.
   * Not with `reverse` (reverse each sequence in time instead).
   */
  batchSizes?: readonly number[];
}

export interface RnnLayerOptions extends LstmLayerOptions {
  /** PyTorch's `nonlinearity` (default 'tanh'). */
  nonlinearity?: RnnNonlinearity;
}

/** What every layer shares: checked sizes, the step order and the input projection. */
interface Layer {
  T: number;
  batch: number;
  hidden: number;
  input: number;
  /** Gates per step, G·H. */
  G: number;
  reverse: boolean;
  /** The time index of the s-th step run. */
  time: (s: number) => number;
  /** Rows running at the s-th step run (0 past the end): `batch` unless `batchSizes` is given. */
  rows: (s: number) => number;
}

/** Checks a layer's operands (`c0` only for the LSTM). */
function checkLayer(
  op: string,
  gates: number,
  x: Tensor,
  h0: Tensor,
  c0: Tensor | null,
  wIh: Tensor,
  wHh: Tensor,
  bIh: Tensor | null,
  bHh: Tensor | null,
  opts: LstmLayerOptions,
): Layer {
  const reverse = opts.reverse === true;
  const [batch, hidden] = checkCell(op, gates, null, h0, wHh, bHh, c0);
  for (const [name, t] of [
    ['x', x],
    ['wIh', wIh],
    ['bIh', bIh],
  ] as const) {
    if (t && t.dtype !== 'float32')
      throw new DTypeError(`${op}: ${name} must be float32, got ${t.dtype}`);
  }
  const G = gates * hidden;
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
  const time = (s: number): number => (reverse ? T - 1 - s : s);
  const sizes = opts.batchSizes;
  if (sizes !== undefined) {
    const ok =
      !reverse &&
      sizes.length === T &&
      sizes[0] === batch &&
      sizes.every((n, i) => Number.isInteger(n) && n >= 1 && (i === 0 || n <= sizes[i - 1]));
    if (!ok) {
      throw new ValueError(
        `${op}: batchSizes must be ${T} non-increasing positive integers starting at batch ${batch}` +
          `${reverse ? ', without reverse' : ''}; got [${sizes.join(', ')}]`,
      );
    }
  }
  const rows = (s: number): number => (s >= T ? 0 : sizes ? sizes[s] : batch);
  return { T, batch, hidden, input, G, reverse, time, rows };
}

/**
 * The input projection of all steps, `x · W_ihᵀ (+ b_ih)` `[T, batch, G]`: one GEMM. Without
 * `bIh` the GEMM writes `gx` directly (no broadcast fill, no read of C).
 */
function project(L: Layer, x: Tensor, wIh: Tensor, bIh: Tensor | null): Tensor {
  const rows = L.T * L.batch;
  const gx = Tensor.empty([L.T, L.batch, L.G], 'float32');
  if (bIh) copyStrided(bIh, 0, gx, 0, [rows, L.G], [0, 1], [L.G, 1]);
  gemm(x, 0, [L.input, 1], wIh, 0, [1, L.input], gx, 0, rows, L.input, L.G, bIh !== null);
  return gx;
}

/**
 * `b_ih + b_hh` (or whichever exists), the one bias an LSTM step adds to
 * `x · W_ihᵀ + h · W_hhᵀ`: the cell adds it in the pass it makes anyway, so the projection
 * skips its `[T, batch, G]` broadcast. Returns the tensor and whether the caller disposes it.
 */
function stepBias(bIh: Tensor | null, bHh: Tensor | null): [Tensor | null, boolean] {
  if (!bIh || !bHh) return [bIh ?? bHh, false];
  const b = Tensor.empty(bIh.shape, 'float32');
  copyStrided(bIh, 0, b, 0, [b.size], [1], [1]);
  wasm().add_inplace_f32(b.ptr, bHh.ptr, b.size);
  return [b, true];
}

/** A `[T, batch, G]` per-step gradient buffer: zeroed only when rows stop early (the kernels write every running row). */
function stepGradBuffer(L: Layer, G: number): Tensor {
  const shape = [L.T, L.batch, G];
  return L.rows(L.T - 1) < L.batch ? zeros(shape) : Tensor.empty(shape, 'float32');
}

/**
 * The gradients of `x`, `W_ih`, `W_hh` and the biases from the per-step gradients of the input
 * projection `dgx` and of the recurrent projection `dgh` (the same tensor for LSTM and Elman):
 * one GEMM each over all steps. The steps after the first read the previous step's output (one
 * GEMM over contiguous rows of `y`); the first step reads h0 (one small GEMM).
 */
function layerGrads(
  L: Layer,
  x: Tensor,
  h0: Tensor,
  y: Tensor,
  wIh: Tensor,
  wHh: Tensor,
  bIh: Tensor | null,
  bHh: Tensor | null,
  dgx: Tensor,
  dgh: Tensor,
): { dx: Tensor | null; dwIh: Tensor | null; dwHh: Tensor | null; biases: (Tensor | null)[] } {
  const { T, batch, hidden, input, G } = L;
  const rows = T * batch;
  let dx: Tensor | null = null;
  if (x.requiresGrad) {
    dx = Tensor.empty(x.shape, 'float32');
    gemm(dgx, 0, [G, 1], wIh, 0, [input, 1], dx, 0, rows, G, input, false);
  }
  let dwIh: Tensor | null = null;
  if (wIh.requiresGrad) {
    dwIh = Tensor.empty(wIh.shape, 'float32');
    gemm(dgx, 0, [1, G], x, 0, [input, 1], dwIh, 0, G, rows, input, false);
  }
  let dwHh: Tensor | null = null;
  if (wHh.requiresGrad) {
    dwHh = Tensor.empty(wHh.shape, 'float32');
    const n = (T - 1) * batch;
    const [dOff, yOff, firstOff] = L.reverse ? [0, batch * hidden, n * G] : [batch * G, 0, 0];
    gemm(dgh, dOff, [1, G], y, yOff, [hidden, 1], dwHh, 0, G, n, hidden, false);
    gemm(dgh, firstOff, [1, G], h0, 0, [hidden, 1], dwHh, 0, G, batch, hidden, true);
  }
  const rowSum = (g: Tensor): Tensor => sum(g._alias([rows, G]), 0);
  const dbIh = bIh?.requiresGrad ? rowSum(dgx) : null;
  const dbHh = bHh?.requiresGrad ? (dgh === dgx && dbIh ? clone2(dbIh) : rowSum(dgh)) : null;
  const biases = [...(bIh ? [dbIh] : []), ...(bHh ? [dbHh] : [])];
  return { dx, dwIh, dwHh, biases };
}

/**
 * Calls `f(s, lo, hi)` for each step run `s` at which rows `[lo, hi)` run their last step: the
 * last step for every row, unless `batchSizes` shrinks the batch earlier.
 */
function eachLastStep(L: Layer, f: (s: number, lo: number, hi: number) => void): void {
  for (let s = 0; s < L.T; s++) if (L.rows(s) > L.rows(s + 1)) f(s, L.rows(s + 1), L.rows(s));
}

/** Each row's state after its last step, from the per-step states `states` `[T, batch, H]`. */
function lastStates(L: Layer, states: Tensor, out: Tensor): void {
  const H = L.hidden;
  eachLastStep(L, (s, lo, hi) => {
    const from = (L.time(s) * L.batch + lo) * H;
    copyStrided(states, from, out, lo * H, [(hi - lo) * H], [1], [1]);
  });
}

/** `dH[t]`: the gradient reaching each step's output, `dy` plus `dhN` at each row's last step. */
function outputGrads(L: Layer, dy: Tensor | null, dhN: Tensor | null): Tensor {
  const H = L.hidden;
  const dH = dy ? clone2(dy) : zeros([L.T, L.batch, H]);
  if (dhN && H > 0) {
    eachLastStep(L, (s, lo, hi) => {
      const at = dH.ptr + 4 * (L.time(s) * L.batch + lo) * H;
      wasm().add_inplace_f32(at, dhN.ptr + 4 * lo * H, (hi - lo) * H);
    });
  }
  return dH;
}

/** A layer's `[T, batch, H]` per-step output, zero-filled when rows stop before the end. */
function outputBuffer(L: Layer): Tensor {
  const shape = [L.T, L.batch, L.hidden];
  return L.rows(L.T - 1) < L.batch ? zeros(shape) : Tensor.empty(shape, 'float32');
}

/** Disposes the backward's buffers that are not among the returned gradients. */
function disposeUnused(grads: readonly (Tensor | null)[], temps: readonly Tensor[]): void {
  for (const t of temps) if (!grads.includes(t)) t.dispose();
}

/**
 * One LSTM layer and direction over a sequence, as ONE autograd node: `x` `[T, batch, input]`,
 * `h0`, `c0` `[batch, H]`, `wIh` `[4H, input]`, `wHh` `[4H, H]`, biases `[4H]` or null.
 * Returns `[output [T, batch, H], hN, cN]` like PyTorch's `output, (h_n, c_n)`.
 *
 * The input projection of all steps is one GEMM; the steps run the fused kernel in a loop. The
 * backward runs the fused backward per step into a `[T, batch, 4H]` gate-gradient buffer, then
 * `dx`, `dW_ih` and `dW_hh` are one GEMM each over all steps (`dW_hh` plus one small GEMM for
 * the step that reads h0) and the bias gradients one row sum. The graph keeps the inputs and
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
  const L = checkLayer(op, 4, x, h0, c0, wIh, wHh, bIh, bHh, opts);
  const { T, batch, hidden, G, time } = L;
  const BH = batch * hidden;
  const gx = project(L, x, wIh, null);
  const [bias, ownBias] = stepBias(bIh, bHh);
  const y = outputBuffer(L);
  const cs = outputBuffer(L);
  const act = Tensor.empty([T, batch, G], 'float32');
  const pre = Tensor.empty([batch, G], 'float32');
  const hN = Tensor.empty([batch, hidden], 'float32');
  const cN = Tensor.empty([batch, hidden], 'float32');
  if (BH > 0) {
    const packed = packWhh(wHh, 4, hidden, false);
    for (let s = 0; s < T; s++) {
      const t = time(s);
      const hPrev = s === 0 ? h0.ptr : y.ptr + 4 * time(s - 1) * BH;
      const cPrev = s === 0 ? c0.ptr : cs.ptr + 4 * time(s - 1) * BH;
      cellRows('lstm_cell_f32', L.rows(s), hidden, 4, (b, e, sc) => [
        ...[gx.ptr + 4 * t * batch * G, hPrev, cPrev, wHh.ptr, ptr(packed), ptr(bias)],
        ...[y.ptr + 4 * t * BH, cs.ptr + 4 * t * BH, act.ptr + 4 * t * batch * G, pre.ptr],
        ...[batch, hidden, b, e, sc],
      ]);
    }
    packed?.dispose();
    lastStates(L, y, hN);
    lastStates(L, cs, cN);
  }
  if (ownBias) bias?.dispose();
  gx.dispose();
  pre.dispose();

  const inputs = [x, h0, c0, wIh, wHh, ...(bIh ? [bIh] : []), ...(bHh ? [bHh] : [])];
  const outs = recordMulti(
    [y, hN, cN] as [Tensor, Tensor, Tensor],
    op,
    inputs,
    ([dy, dhN, dcN]) => {
      const k = wasm();
      const dgates = stepGradBuffer(L, G);
      // Each step's backward adds dh_prev onto dH of the step before, in place.
      const dH = outputGrads(L, dy, dhN);
      const dh0 = zeros([batch, hidden]);
      const dcBufs = [zeros([batch, hidden]), zeros([batch, hidden])];
      let dcIn = ptr(dcN);
      if (BH > 0) {
        const packed = packWhh(wHh, 4, hidden, true);
        for (let s = T - 1; s >= 0; s--) {
          const t = time(s);
          const cPrev = s === 0 ? c0.ptr : cs.ptr + 4 * time(s - 1) * BH;
          const dhPrev = s === 0 ? dh0.ptr : dH.ptr + 4 * time(s - 1) * BH;
          const dcOut = dcBufs[s % 2].ptr;
          // Rows whose last step is s start from dcN (the buffer's rows there are still zero).
          if (dcN && s < T - 1 && L.rows(s) > L.rows(s + 1)) {
            const [lo, hi] = [L.rows(s + 1), L.rows(s)];
            k.add_inplace_f32(
              dcIn + 4 * lo * hidden,
              dcN.ptr + 4 * lo * hidden,
              (hi - lo) * hidden,
            );
          }
          const dc = dcIn;
          cellRows(
            'lstm_cell_bwd_f32',
            L.rows(s),
            hidden,
            4,
            (b, e, sc) => [
              ...[dH.ptr + 4 * t * BH, dc, act.ptr + 4 * t * batch * G, cPrev, cs.ptr + 4 * t * BH],
              ...[wHh.ptr, ptr(packed), dgates.ptr + 4 * t * batch * G, dhPrev, dcOut],
              ...[batch, hidden, b, e, s > 0 ? 1 : 0, sc],
            ],
            s === 0,
          );
          dcIn = dcOut;
        }
        packed?.dispose();
      }
      dH.dispose();
      dcBufs[1].dispose();
      const dc0 = dcBufs[0];
      const w = layerGrads(L, x, h0, y, wIh, wHh, bIh, bHh, dgates, dgates);
      const grads = [
        w.dx,
        h0.requiresGrad ? dh0 : null,
        c0.requiresGrad ? dc0 : null,
        w.dwIh,
        w.dwHh,
        ...w.biases,
      ];
      disposeUnused(grads, [dgates, dh0, dc0]);
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

/**
 * One GRU layer and direction (PyTorch's formulation) as ONE node: `x` `[T, batch, input]`,
 * `h0` `[batch, H]`, `wIh` `[3H, input]`, `wHh` `[3H, H]`, biases `[3H]` or null. Returns
 * `[output [T, batch, H], hN]`. Same structure as `lstmLayer`; the saved activations are
 * `(r, z, n, W_hn h + b_hn)` per step and the outputs.
 */
export function gruLayer(
  x: Tensor,
  h0: Tensor,
  wIh: Tensor,
  wHh: Tensor,
  bIh: Tensor | null = null,
  bHh: Tensor | null = null,
  opts: LstmLayerOptions = {},
): [Tensor, Tensor] {
  const op = 'gruLayer';
  const L = checkLayer(op, 3, x, h0, null, wIh, wHh, bIh, bHh, opts);
  const { T, batch, hidden, G, time } = L;
  const BH = batch * hidden;
  const gx = project(L, x, wIh, bIh);
  const y = outputBuffer(L);
  const act = Tensor.empty([T, batch, 4 * hidden], 'float32');
  const pre = Tensor.empty([batch, G], 'float32');
  const hN = Tensor.empty([batch, hidden], 'float32');
  const hPrevOf = (s: number): number => (s === 0 ? h0.ptr : y.ptr + 4 * time(s - 1) * BH);
  if (BH > 0) {
    const packed = packWhh(wHh, 3, hidden, false);
    for (let s = 0; s < T; s++) {
      const t = time(s);
      cellRows('gru_cell_f32', L.rows(s), hidden, 3, (b, e, sc) => [
        ...[gx.ptr + 4 * t * batch * G, hPrevOf(s), wHh.ptr, ptr(packed), ptr(bHh)],
        ...[y.ptr + 4 * t * BH, act.ptr + 16 * t * BH, pre.ptr, batch, hidden, b, e, sc],
      ]);
    }
    packed?.dispose();
    lastStates(L, y, hN);
  }
  gx.dispose();
  pre.dispose();

  const inputs = [x, h0, wIh, wHh, ...(bIh ? [bIh] : []), ...(bHh ? [bHh] : [])];
  const outs = recordMulti(
    [y, hN] as [Tensor, Tensor],
    op,
    inputs,
    ([dy, dhN]) => {
      const k = wasm();
      const dgx = stepGradBuffer(L, G);
      const dgh = stepGradBuffer(L, G);
      const dH = outputGrads(L, dy, dhN);
      // The kernel writes dh_prev (not accumulates), so it lands here and is added on.
      const dhPrev = zeros([batch, hidden]);
      if (BH > 0) {
        const packed = packWhh(wHh, 3, hidden, true);
        for (let s = T - 1; s >= 0; s--) {
          const t = time(s);
          cellRows('gru_cell_bwd_f32', L.rows(s), hidden, 3, (b, e, sc) => [
            ...[dH.ptr + 4 * t * BH, act.ptr + 16 * t * BH, hPrevOf(s), wHh.ptr, ptr(packed)],
            ...[dgx.ptr + 4 * t * batch * G, dgh.ptr + 4 * t * batch * G, dhPrev.ptr],
            ...[batch, hidden, b, e, sc],
          ]);
          const n = L.rows(s) * hidden;
          if (s > 0) k.add_inplace_f32(dH.ptr + 4 * time(s - 1) * BH, dhPrev.ptr, n);
        }
        packed?.dispose();
      }
      dH.dispose();
      const w = layerGrads(L, x, h0, y, wIh, wHh, bIh, bHh, dgx, dgh);
      dgh.dispose();
      const grads = [w.dx, h0.requiresGrad ? dhPrev : null, w.dwIh, w.dwHh, ...w.biases];
      disposeUnused(grads, [dgx, dhPrev]);
      return grads;
    },
    [act, y],
  );
  if (!y.requiresGrad) act.dispose();
  return outs;
}

/**
 * One Elman RNN layer and direction as ONE node: `x` `[T, batch, input]`, `h0` `[batch, H]`,
 * `wIh` `[H, input]`, `wHh` `[H, H]`, biases `[H]` or null, `nonlinearity` tanh (default) or
 * relu. Returns `[output [T, batch, H], hN]`; the outputs are all it saves.
 */
export function rnnLayer(
  x: Tensor,
  h0: Tensor,
  wIh: Tensor,
  wHh: Tensor,
  bIh: Tensor | null = null,
  bHh: Tensor | null = null,
  opts: RnnLayerOptions = {},
): [Tensor, Tensor] {
  const op = 'rnnLayer';
  const nl = opts.nonlinearity ?? 'tanh';
  if (nl !== 'tanh' && nl !== 'relu') {
    throw new ValueError(`${op}: nonlinearity must be 'tanh' or 'relu', got '${String(nl)}'`);
  }
  const relu = nl === 'relu' ? 1 : 0;
  const L = checkLayer(op, 1, x, h0, null, wIh, wHh, bIh, bHh, opts);
  const { T, batch, hidden, time } = L;
  const BH = batch * hidden;
  const gx = project(L, x, wIh, bIh);
  const y = outputBuffer(L);
  const pre = Tensor.empty([batch, hidden], 'float32');
  const hN = Tensor.empty([batch, hidden], 'float32');
  const hPrevOf = (s: number): number => (s === 0 ? h0.ptr : y.ptr + 4 * time(s - 1) * BH);
  if (BH > 0) {
    const packed = packWhh(wHh, 1, hidden, false);
    for (let s = 0; s < T; s++) {
      const t = time(s);
      cellRows('rnn_cell_f32', L.rows(s), hidden, 1, (b, e, sc) => [
        ...[gx.ptr + 4 * t * BH, hPrevOf(s), wHh.ptr, ptr(packed), ptr(bHh), y.ptr + 4 * t * BH],
        ...[pre.ptr, relu, batch, hidden, b, e, sc],
      ]);
    }
    packed?.dispose();
    lastStates(L, y, hN);
  }
  gx.dispose();
  pre.dispose();

  const inputs = [x, h0, wIh, wHh, ...(bIh ? [bIh] : []), ...(bHh ? [bHh] : [])];
  return recordMulti(
    [y, hN] as [Tensor, Tensor],
    op,
    inputs,
    ([dy, dhN]) => {
      const k = wasm();
      const dpre = stepGradBuffer(L, hidden);
      const dH = outputGrads(L, dy, dhN);
      const dhPrev = zeros([batch, hidden]);
      if (BH > 0) {
        const packed = packWhh(wHh, 1, hidden, true);
        for (let s = T - 1; s >= 0; s--) {
          const t = time(s);
          cellRows('rnn_cell_bwd_f32', L.rows(s), hidden, 1, (b, e, sc) => [
            ...[dH.ptr + 4 * t * BH, y.ptr + 4 * t * BH, wHh.ptr, ptr(packed)],
            ...[dpre.ptr + 4 * t * BH, dhPrev.ptr, relu, batch, hidden, b, e, sc],
          ]);
          const n = L.rows(s) * hidden;
          if (s > 0) k.add_inplace_f32(dH.ptr + 4 * time(s - 1) * BH, dhPrev.ptr, n);
        }
        packed?.dispose();
      }
      dH.dispose();
      const w = layerGrads(L, x, h0, y, wIh, wHh, bIh, bHh, dpre, dpre);
      const grads = [w.dx, h0.requiresGrad ? dhPrev : null, w.dwIh, w.dwHh, ...w.biases];
      disposeUnused(grads, [dpre, dhPrev]);
      return grads;
    },
    [y],
  );
}

/** A plain (unrecorded) copy. */
function clone2(t: Tensor): Tensor {
  const out = Tensor.empty(t.shape, 'float32');
  copyStrided(t, 0, out, 0, [t.size], [1], [1]);
  return out;
}
