// nn.RNN / nn.LSTM / nn.GRU: per layer and direction, ONE matmul projects the inputs of all
// timesteps (x·W_ihᵀ + b_ih), then the recurrent half runs one step at a time, through the fused
// layer ops (nb.lstmLayer etc.: one autograd node per layer and direction, one GEMM per weight
// gradient). A packed batch is gathered into a padded block whose rows stop at their lengths
// (`batchSizes`). Only the LSTM with a projection (`projSize`) steps through the cell functions of
// ./step.ts. Parameter names, their order, gate order and initialisation are PyTorch's, so state
// dicts move both ways unchanged.
import { ShapeError, DTypeError, ValueError, fmt } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import { tensor, zeros } from '../../ops/creation.js';
import { cat, stack } from '../../ops/shape.js';
import { indexSelect } from '../../ops/indexing.js';
import { Module, Parameter, pyBool, pyFloat } from '../module.js';
import { dropout, linear } from '../functional.js';
import * as init from '../init.js';
import { PackedSequence } from './packing.js';
import { gruCellStep, lstmCellStep, rnnReluCellStep, rnnTanhCellStep } from './step.js';
import { gruLayer, lstmLayer, rnnLayer } from '../../ops/rnn.js';

export type RNNMode = 'RNN_TANH' | 'RNN_RELU' | 'LSTM' | 'GRU';

export interface RNNOptions {
  /** Stacked layers (default 1). */
  numLayers?: number;
  /** Use b_ih and b_hh (default true). */
  bias?: boolean;
  /** Input and output are [batch, time, features] (default false: [time, batch, features]). */
  batchFirst?: boolean;
  /** Dropout probability on each layer's output except the last, while training (default 0). */
  dropout?: number;
  /** Run a second, time-reversed recurrence per layer and concatenate (default false). */
  bidirectional?: boolean;
}

/** The recurrent state of one layer and direction: h, plus c for an LSTM. */
type State = [Tensor, Tensor | null];

function gateCount(mode: RNNMode): number {
  return mode === 'LSTM' ? 4 : mode === 'GRU' ? 3 : 1;
}

function checkPositiveInt(op: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v <= 0)
    throw new ValueError(`${op}: ${name} must be a positive integer, got ${v}`);
}

/** What RNN, LSTM and GRU share (PyTorch's RNNBase). */
export abstract class RNNBase extends Module {
  /**
   * PyTorch's per-layer parameters, made in the constructor: weight_ih_l0, weight_hh_l0,
   * bias_ih_l0, bias_hh_l0, weight_hr_l0 (projSize), `_reverse` for the second direction.
   */
  [param: `weight_${string}` | `bias_${string}`]: Tensor;
  readonly numLayers: number;
  readonly bias: boolean;
  readonly batchFirst: boolean;
  readonly dropout: number;
  readonly bidirectional: boolean;
  readonly projSize: number;

  constructor(
    readonly mode: RNNMode,
    readonly inputSize: number,
    readonly hiddenSize: number,
    opts: RNNOptions & { projSize?: number } = {},
  ) {
    super();
    const op = this.constructor.name;
    checkPositiveInt(op, 'inputSize', inputSize);
    checkPositiveInt(op, 'hiddenSize', hiddenSize);
    this.numLayers = opts.numLayers ?? 1;
    checkPositiveInt(op, 'numLayers', this.numLayers);
    this.bias = opts.bias ?? true;
    this.batchFirst = opts.batchFirst ?? false;
    this.dropout = opts.dropout ?? 0;
    this.bidirectional = opts.bidirectional ?? false;
    this.projSize = opts.projSize ?? 0;
    if (!(this.dropout >= 0 && this.dropout <= 1))
      throw new ValueError(`${op}: dropout must be in [0, 1], got ${this.dropout}`);
    if (!Number.isInteger(this.projSize) || this.projSize < 0)
      throw new ValueError(`${op}: projSize must be a non-negative integer, got ${this.projSize}`);
    if (this.projSize >= hiddenSize) {
      throw new ValueError(
        `${op}: projSize (${this.projSize}) must be smaller than hiddenSize (${hiddenSize})`,
      );
    }
    if (this.projSize > 0 && mode !== 'LSTM')
      throw new ValueError(`${op}: projSize is only supported by LSTM`);

    const gates = gateCount(mode) * hiddenSize;
    const out = this.outSize();
    const fields = this as unknown as Record<string, Tensor>;
    // PyTorch's order: per layer, per direction: w_ih, w_hh, b_ih, b_hh, w_hr.
    for (let l = 0; l < this.numLayers; l++) {
      const inSize = l === 0 ? inputSize : out * this.numDirections();
      for (let d = 0; d < this.numDirections(); d++) {
        const sfx = `_l${l}${d === 1 ? '_reverse' : ''}`;
        fields[`weight_ih${sfx}`] = Parameter(zeros([gates, inSize]));
        fields[`weight_hh${sfx}`] = Parameter(zeros([gates, out]));
        if (this.bias) {
          fields[`bias_ih${sfx}`] = Parameter(zeros([gates]));
          fields[`bias_hh${sfx}`] = Parameter(zeros([gates]));
        }
        if (this.projSize > 0)
          fields[`weight_hr${sfx}`] = Parameter(zeros([this.projSize, hiddenSize]));
      }
    }
    this.resetParameters();
  }

  numDirections(): number {
    return this.bidirectional ? 2 : 1;
  }

  /** Width of h and of each direction's output: projSize when projecting, else hiddenSize. */
  outSize(): number {
    return this.projSize > 0 ? this.projSize : this.hiddenSize;
  }

  /** PyTorch's default: every weight and bias U(±1/√hiddenSize). */
  resetParameters(): void {
    const k = 1 / Math.sqrt(this.hiddenSize);
    for (const p of this.parameters()) init.uniform_(p, -k, k);
  }

  /** PyTorch's cuDNN weight compaction; nabla's weights are always usable as they are. */
  flattenParameters(): void {
    // Nothing to do: kept so code written for torch runs unchanged.
  }

  /** The parameter called `name` (a PyTorch state-dict key), or null. */
  protected param(name: string): Tensor | null {
    return (this as unknown as Record<string, Tensor | undefined>)[name] ?? null;
  }

  override extraRepr(): string {
    let s = `${this.inputSize}, ${this.hiddenSize}`;
    if (this.projSize !== 0) s += `, proj_size=${this.projSize}`;
    if (this.numLayers !== 1) s += `, num_layers=${this.numLayers}`;
    if (!this.bias) s += `, bias=${pyBool(false)}`;
    if (this.batchFirst) s += `, batch_first=${pyBool(true)}`;
    if (this.dropout !== 0) s += `, dropout=${pyFloat(this.dropout)}`;
    if (this.bidirectional) s += `, bidirectional=${pyBool(true)}`;
    return s;
  }

  /**
   * Runs the stack. `input` is padded ([T, B, in], [B, T, in] with batchFirst, or unbatched
   * [T, in]) or packed; `h0`/`c0` are [numLayers·directions, B, width] in the original batch
   * order (unbatched: without B), zeros when omitted. Returns the output in the input's form
   * and the final states in h0's layout.
   */
  protected run(
    input: Tensor | PackedSequence,
    h0: Tensor | null,
    c0: Tensor | null,
  ): [Tensor | PackedSequence, Tensor, Tensor | null] {
    const op = this.constructor.name;
    const isLSTM = this.mode === 'LSTM';
    const D = this.numDirections();
    const L = this.numLayers;
    const H = this.hiddenSize;
    const out = this.outSize();

    let data: Tensor;
    let batchSizes: number[];
    let B: number;
    let unbatched = false;
    let T = 0;
    if (input instanceof PackedSequence) {
      data = input.data;
      batchSizes = [...input.batchSizes];
      B = batchSizes[0] ?? 0;
      if (data.ndim !== 2 || data.shape[1] !== this.inputSize) {
        throw new ShapeError(
          `${op}: packed input data ${fmt(data.shape)} must be [N, inputSize=${this.inputSize}]`,
        );
      }
    } else {
      if (!(input instanceof Tensor))
        throw new ValueError(`${op}: input must be a Tensor or PackedSequence`);
      if (input.ndim !== 2 && input.ndim !== 3) {
        throw new ShapeError(
          `${op}: input must be 3-D (batched) or 2-D (unbatched), got ${fmt(input.shape)}`,
        );
      }
      if (input.shape[input.ndim - 1] !== this.inputSize) {
        throw new ShapeError(
          `${op}: input ${fmt(input.shape)} must end in inputSize=${this.inputSize} features`,
        );
      }
      unbatched = input.ndim === 2;
      const x = unbatched ? input.unsqueeze(1) : this.batchFirst ? input.transpose(0, 1) : input;
      T = x.shape[0];
      B = x.shape[1];
      if (T === 0 || B === 0) throw new ShapeError(`${op}: input ${fmt(input.shape)} is empty`);
      data = x.reshape([T * B, this.inputSize]);
      batchSizes = new Array<number>(T).fill(B);
    }
    if (data.dtype !== 'float32')
      throw new DTypeError(`${op}: input must be float32, got ${data.dtype}`);

    const sorted = input instanceof PackedSequence ? input.sortedIndices : null;
    const unsorted = input instanceof PackedSequence ? input.unsortedIndices : null;
    const initial = (t: Tensor | null, name: string, width: number): Tensor | null => {
      if (t === null) return null;
      const want = unbatched ? [L * D, width] : [L * D, B, width];
      if (t.ndim !== want.length || t.shape.some((s, i) => s !== want[i])) {
        throw new ShapeError(
          `${op}: ${name} must be ${fmt(want)} (numLayers·directions, batch, ${width}), got ${fmt(t.shape)}`,
        );
      }
      const b = unbatched ? t.unsqueeze(1) : t;
      return sorted ? indexSelect(b, 1, sorted) : b;
    };
    const hInit = initial(h0, 'h0', out);
    const cInit = isLSTM ? initial(c0, 'c0', H) : null;

    const hN: Tensor[] = [];
    const cN: Tensor[] = [];
    let layerInput = data;
    for (let l = 0; l < L; l++) {
      const dirOutputs: Tensor[] = [];
      for (let d = 0; d < D; d++) {
        const k = l * D + d;
        const h = hInit ? hInit.narrow(0, k, 1).squeeze(0) : zeros([B, out]);
        const c = isLSTM ? (cInit ? cInit.narrow(0, k, 1).squeeze(0) : zeros([B, H])) : null;
        const [y, [hLast, cLast]] = this.direction(layerInput, batchSizes, l, d === 1, [h, c]);
        dirOutputs.push(y);
        hN.push(hLast);
        if (cLast) cN.push(cLast);
      }
      layerInput = D === 1 ? dirOutputs[0] : cat(dirOutputs, 1);
      if (l < L - 1 && this.dropout > 0 && this.training)
        layerInput = dropout(layerInput, { p: this.dropout, training: true });
    }

    const finish = (states: Tensor[]): Tensor => {
      const s = stack(states, 0);
      const back = unsorted ? indexSelect(s, 1, unsorted) : s;
      return unbatched ? back.squeeze(1) : back;
    };
    const hOut = finish(hN);
    const cOut = isLSTM ? finish(cN) : null;
    if (input instanceof PackedSequence) return [input.withData(layerInput), hOut, cOut];
    const y = layerInput.reshape([T, B, out * D]);
    const output = unbatched ? y.squeeze(1) : this.batchFirst ? y.transpose(0, 1) : y;
    return [output, hOut, cOut];
  }

  /**
   * One layer in one direction over packed rows: step t reads rows [offset_t, offset_t + n_t).
   * Going forward the batch shrinks and each sequence leaving it has reached its last step; going
   * backward it grows and each sequence joining starts from its initial state.
   */
  private direction(
    x: Tensor,
    batchSizes: readonly number[],
    layer: number,
    reverse: boolean,
    init0: State,
  ): [Tensor, State] {
    const sfx = `_l${layer}${reverse ? '_reverse' : ''}`;
    const wIh = this.param(`weight_ih${sfx}`) as Tensor;
    const wHh = this.param(`weight_hh${sfx}`) as Tensor;
    const bIh = this.param(`bias_ih${sfx}`);
    const bHh = this.param(`bias_hh${sfx}`);
    const wHr = this.param(`weight_hr${sfx}`);
    const T0 = batchSizes.length;
    const B0 = batchSizes[0] ?? 0;
    if (wHr === null && T0 > 0) {
      // The fused layer kernels: the projection of all steps as one GEMM, one kernel call per
      // step, one GEMM per weight gradient. Padded input (every sequence runs all steps) goes in
      // as it is. A packed batch that shrinks is gathered into a zero-padded [T, B] block (each
      // sequence reversed in time for the reverse direction), runs forward on the rows still
      // running at each step, and is gathered back.
      const gather = batchSizes.every((n) => n === B0) ? null : packedGather(batchSizes, reverse);
      const xs = gather ? indexSelect(cat([x, zeros([1, x.shape[1]])], 0), 0, gather.toPadded) : x;
      const x3 = xs.reshape([T0, B0, x.shape[1]]);
      const opts = gather ? { batchSizes } : { reverse };
      const [h0, c0] = init0;
      const out = (y: Tensor): Tensor => {
        const flat = y.reshape([T0 * B0, y.shape[2]]);
        return gather ? indexSelect(flat, 0, gather.toPacked) : flat;
      };
      if (this.mode === 'LSTM') {
        const [y, hN, cN] = lstmLayer(x3, h0, c0 as Tensor, wIh, wHh, bIh, bHh, opts);
        return [out(y), [hN, cN]];
      }
      if (this.mode === 'GRU') {
        const [y, hN] = gruLayer(x3, h0, wIh, wHh, bIh, bHh, opts);
        return [out(y), [hN, null]];
      }
      const nonlinearity = this.mode === 'RNN_TANH' ? 'tanh' : 'relu';
      const [y, hN] = rnnLayer(x3, h0, wIh, wHh, bIh, bHh, { ...opts, nonlinearity });
      return [out(y), [hN, null]];
    }
    const gx = linear(x, wIh, bIh); // all timesteps in one matmul
    const offsets: number[] = [];
    let total = 0;
    for (const n of batchSizes) {
      offsets.push(total);
      total += n;
    }
    const T = batchSizes.length;
    const outputs = new Array<Tensor>(T);
    let [h, c] = init0;
    const step = (t: number): void => {
      const n = batchSizes[t];
      const g = gx.narrow(0, offsets[t], n);
      if (this.mode === 'LSTM') {
        [h, c] = lstmCellStep(g, h, c as Tensor, wHh, bHh, wHr);
      } else if (this.mode === 'GRU') {
        h = gruCellStep(g, h, wHh, bHh);
      } else {
        h = (this.mode === 'RNN_TANH' ? rnnTanhCellStep : rnnReluCellStep)(g, h, wHh, bHh);
      }
      outputs[t] = h;
    };
    if (!reverse) {
      // Rows that leave the batch at step t are final states, shortest sequences first.
      const doneH: Tensor[] = [];
      const doneC: Tensor[] = [];
      for (let t = 0; t < T; t++) {
        const n = batchSizes[t];
        const rows = h.shape[0];
        if (n < rows) {
          doneH.push(h.narrow(0, n, rows - n));
          h = h.narrow(0, 0, n);
          if (c) {
            doneC.push(c.narrow(0, n, rows - n));
            c = c.narrow(0, 0, n);
          }
        }
        step(t);
      }
      const finalH = doneH.length ? cat([h, ...doneH.reverse()], 0) : h;
      const finalC = c && doneC.length ? cat([c, ...doneC.reverse()], 0) : c;
      return [cat(outputs, 0), [finalH, finalC]];
    }
    // Backward in time: start with the sequences that reach the last step, add the others
    // (from their initial state) as the batch grows.
    const [h0, c0] = init0;
    h = h0.narrow(0, 0, batchSizes[T - 1]);
    c = c0 ? c0.narrow(0, 0, batchSizes[T - 1]) : null;
    for (let t = T - 1; t >= 0; t--) {
      const n = batchSizes[t];
      const rows = h.shape[0];
      if (n > rows) {
        h = cat([h, h0.narrow(0, rows, n - rows)], 0);
        if (c && c0) c = cat([c, c0.narrow(0, rows, n - rows)], 0);
      }
      step(t);
    }
    return [cat(outputs, 0), [h, c]];
  }
}

/** Elman RNN: h' = tanh or relu(x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh). Returns `[output, h_n]`. */
export class RNN extends RNNBase {
  readonly nonlinearity: 'tanh' | 'relu';

  constructor(
    inputSize: number,
    hiddenSize: number,
    opts: RNNOptions & { nonlinearity?: 'tanh' | 'relu' } = {},
  ) {
    const nl = opts.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu')
      throw new ValueError(`RNN: unknown nonlinearity '${String(nl)}', expected 'tanh' or 'relu'`);
    super(nl === 'tanh' ? 'RNN_TANH' : 'RNN_RELU', inputSize, hiddenSize, opts);
    this.nonlinearity = nl;
  }

  forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor];
  forward(input: PackedSequence, h0?: Tensor | null): [PackedSequence, Tensor];
  forward(input: Tensor | PackedSequence, h0?: Tensor | null): [Tensor | PackedSequence, Tensor] {
    const [y, h] = this.run(input, h0 ?? null, null);
    return [y, h];
  }
}

/** LSTM with PyTorch's options (incl. projSize). Returns `[output, [h_n, c_n]]`. */
export class LSTM extends RNNBase {
  constructor(
    inputSize: number,
    hiddenSize: number,
    opts: RNNOptions & { projSize?: number } = {},
  ) {
    super('LSTM', inputSize, hiddenSize, opts);
  }

  forward(input: Tensor, hx?: [Tensor, Tensor] | null): [Tensor, [Tensor, Tensor]];
  forward(input: PackedSequence, hx?: [Tensor, Tensor] | null): [PackedSequence, [Tensor, Tensor]];
  forward(
    input: Tensor | PackedSequence,
    hx?: [Tensor, Tensor] | null,
  ): [Tensor | PackedSequence, [Tensor, Tensor]] {
    if (hx != null && (!Array.isArray(hx) || hx.length !== 2))
      throw new ValueError('LSTM: hx must be a pair [h0, c0]');
    const [y, h, c] = this.run(input, hx ? hx[0] : null, hx ? hx[1] : null);
    return [y, [h, c as Tensor]];
  }
}

/** GRU with PyTorch's gate order (r, z, n). Returns `[output, h_n]`. */
export class GRU extends RNNBase {
  constructor(inputSize: number, hiddenSize: number, opts: RNNOptions = {}) {
    super('GRU', inputSize, hiddenSize, opts);
  }

  forward(input: Tensor, h0?: Tensor | null): [Tensor, Tensor];
  forward(input: PackedSequence, h0?: Tensor | null): [PackedSequence, Tensor];
  forward(input: Tensor | PackedSequence, h0?: Tensor | null): [Tensor | PackedSequence, Tensor] {
    const [y, h] = this.run(input, h0 ?? null, null);
    return [y, h];
  }
}

/**
 * Index maps between packed rows (time-major, `batchSizes[t]` rows at step t) and a padded
 * `[T, B]` block: `toPadded[t·B + b]` is the packed row read at padded step t of sequence b (the
 * row past the end, N, for padding), `toPacked[r]` the padded row of packed row r. With `reverse`,
 * each sequence's steps run last to first, so the forward kernels compute the reverse direction.
 */
function packedGather(
  batchSizes: readonly number[],
  reverse: boolean,
): { toPadded: Tensor; toPacked: Tensor } {
  const T = batchSizes.length;
  const B = batchSizes[0];
  const offsets: number[] = [];
  let total = 0;
  for (const n of batchSizes) {
    offsets.push(total);
    total += n;
  }
  const lengths = Array.from({ length: B }, (_, b) => batchSizes.filter((n) => n > b).length);
  const toPadded = new Int32Array(T * B).fill(total);
  const toPacked = new Int32Array(total);
  for (let t = 0; t < T; t++) {
    for (let b = 0; b < batchSizes[t]; b++) {
      const src = reverse ? lengths[b] - 1 - t : t;
      toPadded[t * B + b] = offsets[src] + b;
      toPacked[offsets[src] + b] = t * B + b;
    }
  }
  const int = (a: Int32Array): Tensor => tensor(a, { dtype: 'int32' });
  return { toPadded: int(toPadded), toPacked: int(toPacked) };
}
