// nn.RNNCell / nn.LSTMCell / nn.GRUCell: one timestep, with PyTorch's parameter names
// (weight_ih, weight_hh, bias_ih, bias_hh), initialisation U(±1/√hiddenSize) and the same cell
// functions (./step.ts) the multi-layer modules use.
import { ShapeError, DTypeError, ValueError, fmt } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import { zeros } from '../../ops/creation.js';
import { Module, Parameter, pyBool } from '../module.js';
import { linear } from '../functional.js';
import * as init from '../init.js';
import { gruCellStep, lstmCellStep, rnnReluCellStep, rnnTanhCellStep } from './step.js';

abstract class RNNCellBase extends Module {
  weight_ih: Tensor;
  weight_hh: Tensor;
  bias_ih: Tensor | null;
  bias_hh: Tensor | null;

  constructor(
    readonly inputSize: number,
    readonly hiddenSize: number,
    readonly bias: boolean,
    gates: number,
  ) {
    super();
    const op = this.constructor.name;
    for (const [name, v] of [
      ['inputSize', inputSize],
      ['hiddenSize', hiddenSize],
    ] as const) {
      if (!Number.isInteger(v) || v <= 0)
        throw new ValueError(`${op}: ${name} must be a positive integer, got ${v}`);
    }
    this.weight_ih = Parameter(zeros([gates * hiddenSize, inputSize]));
    this.weight_hh = Parameter(zeros([gates * hiddenSize, hiddenSize]));
    this.bias_ih = bias ? Parameter(zeros([gates * hiddenSize])) : null;
    this.bias_hh = bias ? Parameter(zeros([gates * hiddenSize])) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    const k = 1 / Math.sqrt(this.hiddenSize);
    for (const p of this.parameters()) init.uniform_(p, -k, k);
  }

  override extraRepr(): string {
    return `${this.inputSize}, ${this.hiddenSize}${this.bias ? '' : `, bias=${pyBool(false)}`}`;
  }

  /**
   * Checks input ([B, in] or unbatched [in]) and a state ([B, hidden] / [hidden]); returns the
   * projected input gx as 2-D, the state as 2-D (zeros if absent) and whether to squeeze back.
   */
  protected prepare(x: Tensor, states: (Tensor | null | undefined)[]): [Tensor, Tensor[], boolean] {
    const op = this.constructor.name;
    if (!(x instanceof Tensor)) throw new ValueError(`${op}: input must be a Tensor`);
    if ((x.ndim !== 1 && x.ndim !== 2) || x.shape[x.ndim - 1] !== this.inputSize) {
      throw new ShapeError(
        `${op}: input must be [batch, ${this.inputSize}] or [${this.inputSize}], got ${fmt(x.shape)}`,
      );
    }
    if (x.dtype !== 'float32') throw new DTypeError(`${op}: input must be float32, got ${x.dtype}`);
    const unbatched = x.ndim === 1;
    const x2 = unbatched ? x.unsqueeze(0) : x;
    const B = x2.shape[0];
    const want = unbatched ? [this.hiddenSize] : [B, this.hiddenSize];
    const hs = states.map((s, i) => {
      if (s == null) return zeros([B, this.hiddenSize]);
      if (s.ndim !== want.length || s.shape.some((d, j) => d !== want[j])) {
        throw new ShapeError(
          `${op}: ${i === 0 ? 'hx' : 'cx'} must be ${fmt(want)} for input ${fmt(x.shape)}, got ${fmt(s.shape)}`,
        );
      }
      return unbatched ? s.unsqueeze(0) : s;
    });
    return [linear(x2, this.weight_ih, this.bias_ih), hs, unbatched];
  }
}

/** One Elman step, tanh or relu. `forward(x, hx?)` returns h'. */
export class RNNCell extends RNNCellBase {
  readonly nonlinearity: 'tanh' | 'relu';

  constructor(
    inputSize: number,
    hiddenSize: number,
    opts: { bias?: boolean; nonlinearity?: 'tanh' | 'relu' } = {},
  ) {
    const nl = opts.nonlinearity ?? 'tanh';
    if (nl !== 'tanh' && nl !== 'relu') {
      throw new ValueError(
        `RNNCell: unknown nonlinearity '${String(nl)}', expected 'tanh' or 'relu'`,
      );
    }
    super(inputSize, hiddenSize, opts.bias ?? true, 1);
    this.nonlinearity = nl;
  }

  forward(x: Tensor, hx?: Tensor | null): Tensor {
    const [gx, [h], unbatched] = this.prepare(x, [hx]);
    const step = this.nonlinearity === 'tanh' ? rnnTanhCellStep : rnnReluCellStep;
    const h2 = step(gx, h, this.weight_hh, this.bias_hh);
    return unbatched ? h2.squeeze(0) : h2;
  }

  override extraRepr(): string {
    const s = super.extraRepr();
    return this.nonlinearity === 'tanh' ? s : `${s}, nonlinearity=${this.nonlinearity}`;
  }
}

/** One LSTM step. `forward(x, [hx, cx]?)` returns `[h', c']`. */
export class LSTMCell extends RNNCellBase {
  constructor(inputSize: number, hiddenSize: number, opts: { bias?: boolean } = {}) {
    super(inputSize, hiddenSize, opts.bias ?? true, 4);
  }

  forward(x: Tensor, hx?: [Tensor, Tensor] | null): [Tensor, Tensor] {
    if (hx != null && (!Array.isArray(hx) || hx.length !== 2))
      throw new ValueError('LSTMCell: hx must be a pair [hx, cx]');
    const [gx, [h, c], unbatched] = this.prepare(x, hx ? [hx[0], hx[1]] : [null, null]);
    const [h2, c2] = lstmCellStep(gx, h, c, this.weight_hh, this.bias_hh);
    return unbatched ? [h2.squeeze(0), c2.squeeze(0)] : [h2, c2];
  }
}

/** One GRU step. `forward(x, hx?)` returns h'. */
export class GRUCell extends RNNCellBase {
  constructor(inputSize: number, hiddenSize: number, opts: { bias?: boolean } = {}) {
    super(inputSize, hiddenSize, opts.bias ?? true, 3);
  }

  forward(x: Tensor, hx?: Tensor | null): Tensor {
    const [gx, [h], unbatched] = this.prepare(x, [hx]);
    const h2 = gruCellStep(gx, h, this.weight_hh, this.bias_hh);
    return unbatched ? h2.squeeze(0) : h2;
  }
}
