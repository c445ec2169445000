// Adam and AdamW (decoupled weight decay), with AMSGrad and maximize: PyTorch 1.13's update
// rules, one fused `adam_step_f32` pass per parameter.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { fusedStep } from './fused-step.js';
import {
  OptimFlag,
  Optimizer,
  nonNegative,
  type BufferSpec,
  type ParamGroup,
  type ParamState,
  type Params,
  type Schema,
} from './optimizer.js';

export interface AdamOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

const SCHEMA: Schema<AdamOptions> = {
  lr: 'number',
  betas: 'pair',
  eps: 'number',
  weightDecay: 'number',
  amsgrad: 'boolean',
  maximize: 'boolean',
};

const MOMENTS: readonly BufferSpec[] = [
  { name: 'expAvg', init: 0 },
  { name: 'expAvgSq', init: 0 },
];
const MOMENTS_AMSGRAD: readonly BufferSpec[] = [...MOMENTS, { name: 'maxExpAvgSq', init: 0 }];

/** Shared by Adam and AdamW, which differ only in where weight decay enters. */
abstract class AdamBase extends Optimizer<AdamOptions> {
  protected readonly bufferNames = ['expAvg', 'expAvgSq', 'maxExpAvgSq'];
  protected abstract readonly decoupled: boolean;

  protected checkRanges(where: string, o: AdamOptions): void {
    nonNegative(where, o, ['lr', 'eps', 'weightDecay']);
    o.betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1))
        throw new ValueError(`${where}: invalid beta ${b} at index ${i}, must be in [0, 1)`);
    });
  }

  protected buffers(o: AdamOptions): readonly BufferSpec[] {
    return o.amsgrad ? MOMENTS_AMSGRAD : MOMENTS;
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<AdamOptions>, st: ParamState): void {
    const [beta1, beta2] = o.betas;
    const b = st.buffers;
    const flags =
      (o.maximize ? OptimFlag.MAXIMIZE : 0) |
      (o.amsgrad ? OptimFlag.AMSGRAD : 0) |
      (this.decoupled ? OptimFlag.DECOUPLED : 0);
    const max = o.amsgrad ? b.get('maxExpAvgSq')!.ptr : 0;
    const bufs = [p.ptr, g.ptr, b.get('expAvg')!.ptr, b.get('expAvgSq')!.ptr, max];
    const hyper = [o.lr, beta1, beta2, o.eps, o.weightDecay];
    const corrections = [1 - beta1 ** st.step, 1 - beta2 ** st.step];
    fusedStep('adam_step_f32', bufs, p.size, [...hyper, ...corrections, flags]);
  }
}

const DEFAULTS: Omit<AdamOptions, 'weightDecay'> = {
  lr: 1e-3,
  betas: [0.9, 0.999],
  eps: 1e-8,
  amsgrad: false,
  maximize: false,
};

/** `torch.optim.Adam`: weight decay is added to the gradient (L2 regularisation). */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super('Adam', params, { ...DEFAULTS, weightDecay: 0 }, options, SCHEMA);
  }
}

/** `torch.optim.AdamW`: decoupled weight decay, `param *= 1 - lr * weightDecay` each step. */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, options: Partial<AdamOptions> = {}) {
    super('AdamW', params, { ...DEFAULTS, weightDecay: 1e-2 }, options, SCHEMA);
  }
}
