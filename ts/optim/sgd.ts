// Stochastic gradient descent with optional momentum, dampening, Nesterov momentum and weight
// decay: PyTorch 1.13's `torch.optim.SGD`, one fused `sgd_step_f32` pass per parameter.
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

export interface SGDOptions {
  /** Required (PyTorch has no default either). */
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
}

const SCHEMA: Schema<SGDOptions> = {
  lr: 'number',
  momentum: 'number',
  dampening: 'number',
  weightDecay: 'number',
  nesterov: 'boolean',
  maximize: 'boolean',
};

const MOMENTUM: readonly BufferSpec[] = [{ name: 'momentumBuffer', init: 0, optional: true }];

export class SGD extends Optimizer<SGDOptions> {
  protected readonly bufferNames = ['momentumBuffer'];

  constructor(params: Params<SGDOptions>, options: Partial<SGDOptions> = {}) {
    const defaults = {
      momentum: 0,
      dampening: 0,
      weightDecay: 0,
      nesterov: false,
      maximize: false,
    };
    super('SGD', params, defaults, options, SCHEMA);
  }

  protected checkRanges(where: string, o: SGDOptions): void {
    nonNegative(where, o, ['lr', 'momentum', 'weightDecay']);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new ValueError(`${where}: Nesterov momentum requires a momentum and zero dampening`);
    }
  }

  protected buffers(o: SGDOptions): readonly BufferSpec[] {
    return o.momentum !== 0 ? MOMENTUM : [];
  }

  protected update(
    p: Tensor,
    g: Tensor,
    o: ParamGroup<SGDOptions>,
    st: ParamState,
    fresh: ReadonlySet<string>,
  ): void {
    const buf = o.momentum !== 0 ? st.buffers.get('momentumBuffer')!.ptr : 0;
    const flags =
      (o.maximize ? OptimFlag.MAXIMIZE : 0) |
      (o.nesterov ? OptimFlag.NESTEROV : 0) |
      (fresh.has('momentumBuffer') ? OptimFlag.FIRST : 0);
    const rest = [o.lr, o.momentum, o.dampening, o.weightDecay, flags];
    fusedStep('sgd_step_f32', [p.ptr, g.ptr, buf], p.size, rest);
  }
}
