// Activation layers: parameter-free modules wrapping the elementwise and softmax ops, so
// they can sit in a Sequential (and take a slot in its numbering, as in PyTorch).
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, pyFloat } from './module.js';
import {
  elu,
  hardtanh,
  mish,
  silu,
  softplus,
  type EluOptions,
  type HardtanhOptions,
  type SoftplusOptions,
} from '../ops/math.js';

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu();
  }
}

export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
}

export class Tanh extends Module {
  forward(x: Tensor): Tensor {
    return x.tanh();
  }
}

export class GELU extends Module {
  /** 'none' for the exact erf form (default), 'tanh' for the tanh approximation. */
  readonly approximate: 'none' | 'tanh';

  constructor(opts: { approximate?: 'none' | 'tanh' } = {}) {
    super();
    const approximate = opts.approximate ?? 'none';
    if (approximate !== 'none' && approximate !== 'tanh') {
      throw new ValueError(
        `GELU: approximate must be 'none' or 'tanh', got ${String(approximate)}`,
      );
    }
    this.approximate = approximate;
  }

  forward(x: Tensor): Tensor {
    return x.gelu({ approximate: this.approximate });
  }

  override extraRepr(): string {
    return `approximate='${this.approximate}'`;
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }

  forward(x: Tensor): Tensor {
    return x.leakyRelu(this.negativeSlope);
  }

  override extraRepr(): string {
    return `negative_slope=${pyFloat(this.negativeSlope)}`;
  }
}

export class Softmax extends Module {
  constructor(readonly dim: number) {
    super();
    if (!Number.isInteger(dim)) throw new ValueError(`Softmax: dim must be an integer, got ${dim}`);
  }

  forward(x: Tensor): Tensor {
    return x.softmax(this.dim);
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

export class LogSoftmax extends Module {
  constructor(readonly dim: number) {
    super();
    if (!Number.isInteger(dim)) {
      throw new ValueError(`LogSoftmax: dim must be an integer, got ${dim}`);
    }
  }

  forward(x: Tensor): Tensor {
    return x.logSoftmax(this.dim);
  }

  override extraRepr(): string {
    return `dim=${this.dim}`;
  }
}

export class Softplus extends Module {
  readonly beta: number;
  readonly threshold: number;

  constructor(opts: SoftplusOptions = {}) {
    super();
    this.beta = opts.beta ?? 1;
    this.threshold = opts.threshold ?? 20;
    if (this.beta === 0 || !Number.isFinite(this.beta)) {
      throw new ValueError(`Softplus: beta must be finite and non-zero, got ${this.beta}`);
    }
  }

  forward(x: Tensor): Tensor {
    return softplus(x, { beta: this.beta, threshold: this.threshold });
  }

  /** PyTorch's `extra_repr` (its beta and threshold are ints by default, printed as such). */
  override extraRepr(): string {
    return `beta=${this.beta}, threshold=${this.threshold}`;
  }
}

export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return silu(x);
  }

  override extraRepr(): string {
    return '';
  }
}

export class Mish extends Module {
  forward(x: Tensor): Tensor {
    return mish(x);
  }

  override extraRepr(): string {
    return '';
  }
}

export class Hardtanh extends Module {
  readonly minVal: number;
  readonly maxVal: number;

  constructor(opts: HardtanhOptions = {}) {
    super();
    this.minVal = opts.minVal ?? -1;
    this.maxVal = opts.maxVal ?? 1;
    if (!(this.minVal <= this.maxVal)) {
      throw new ValueError(
        `Hardtanh: minVal (${this.minVal}) cannot be greater than maxVal (${this.maxVal})`,
      );
    }
  }

  forward(x: Tensor): Tensor {
    return hardtanh(x, { minVal: this.minVal, maxVal: this.maxVal });
  }

  override extraRepr(): string {
    return `min_val=${pyFloat(this.minVal)}, max_val=${pyFloat(this.maxVal)}`;
  }
}

export class ELU extends Module {
  readonly alpha: number;

  constructor(opts: EluOptions = {}) {
    super();
    this.alpha = opts.alpha ?? 1;
  }

  forward(x: Tensor): Tensor {
    return elu(x, { alpha: this.alpha });
  }

  override extraRepr(): string {
    return `alpha=${pyFloat(this.alpha)}`;
  }
}
