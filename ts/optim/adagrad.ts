// Adagrad with learning-rate decay, weight decay and an initial accumulator: PyTorch 1.13's
// `torch.optim.Adagrad` (dense gradients), one fused `adagrad_step_f32` pass per parameter.
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

export interface AdagradOptions {
  lr: number;
  lrDecay: number;
  weightDecay: number;
  /** Starting value of the squared-gradient sum. */
  initialAccumulatorValue: number;
  eps: number;
  maximize: boolean;
}

const SCHEMA: Schema<AdagradOptions> = {
  lr: 'number',
  lrDecay: 'number',
  weightDecay: 'number',
  initialAccumulatorValue: 'number',
  eps: 'number',
  maximize: 'boolean',
};

const DEFAULTS: AdagradOptions = {
  lr: 1e-2,
  lrDecay: 0,
  weightDecay: 0,
  initialAccumulatorValue: 0,
  eps: 1e-10,
  maximize: false,
};

export class Adagrad extends Optimizer<AdagradOptions> {
  protected readonly bufferNames = ['sum'];

  constructor(params: Params<AdagradOptions>, options: Partial<AdagradOptions> = {}) {
    super('Adagrad', params, DEFAULTS, options, SCHEMA);
  }

  protected checkRanges(where: string, o: AdagradOptions): void {
    nonNegative(where, o, ['lr', 'lrDecay', 'weightDecay', 'initialAccumulatorValue', 'eps']);
  }

  // PyTorch fills the sum at construction; filling it on the first step gives the same values.
  protected buffers(o: AdagradOptions): readonly BufferSpec[] {
    return [{ name: 'sum', init: o.initialAccumulatorValue }];
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<AdagradOptions>, st: ParamState): void {
    const flags = o.maximize ? OptimFlag.MAXIMIZE : 0;
    const rest = [o.lr, o.lrDecay, o.weightDecay, o.eps, st.step, flags];
    fusedStep('adagrad_step_f32', [p.ptr, g.ptr, st.buffers.get('sum')!.ptr], p.size, rest);
  }
}
