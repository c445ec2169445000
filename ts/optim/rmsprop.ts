// RMSprop with optional momentum, centering and weight decay: PyTorch 1.13's
// `torch.optim.RMSprop`, one fused `rmsprop_step_f32` pass per parameter.
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

export interface RMSpropOptions {
  lr: number;
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;
}

const SCHEMA: Schema<RMSpropOptions> = {
  lr: 'number',
  alpha: 'number',
  eps: 'number',
  weightDecay: 'number',
  momentum: 'number',
  centered: 'boolean',
  maximize: 'boolean',
};

const DEFAULTS: RMSpropOptions = {
  lr: 1e-2,
  alpha: 0.99,
  eps: 1e-8,
  weightDecay: 0,
  momentum: 0,
  centered: false,
  maximize: false,
};

export class RMSprop extends Optimizer<RMSpropOptions> {
  protected readonly bufferNames = ['squareAvg', 'gradAvg', 'momentumBuffer'];

  constructor(params: Params<RMSpropOptions>, options: Partial<RMSpropOptions> = {}) {
    super('RMSprop', params, DEFAULTS, options, SCHEMA);
  }

  protected checkRanges(where: string, o: RMSpropOptions): void {
    nonNegative(where, o, ['lr', 'eps', 'momentum', 'weightDecay', 'alpha']);
  }

  protected buffers(o: RMSpropOptions): readonly BufferSpec[] {
    const out: BufferSpec[] = [{ name: 'squareAvg', init: 0 }];
    if (o.centered) out.push({ name: 'gradAvg', init: 0 });
    if (o.momentum > 0) out.push({ name: 'momentumBuffer', init: 0 });
    return out;
  }

  protected update(p: Tensor, g: Tensor, o: ParamGroup<RMSpropOptions>, st: ParamState): void {
    const b = st.buffers;
    const flags = (o.maximize ? OptimFlag.MAXIMIZE : 0) | (o.centered ? OptimFlag.CENTERED : 0);
    const bufs = [
      p.ptr,
      g.ptr,
      b.get('squareAvg')!.ptr,
      o.centered ? b.get('gradAvg')!.ptr : 0,
      o.momentum > 0 ? b.get('momentumBuffer')!.ptr : 0,
    ];
    const rest = [o.lr, o.alpha, o.eps, o.weightDecay, o.momentum, flags];
    fusedStep('rmsprop_step_f32', bufs, p.size, rest);
  }
}
