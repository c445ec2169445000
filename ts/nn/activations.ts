// Activation layers: parameter-free modules wrapping the elementwise and softmax ops, so
// they can sit in a Sequential (and take a slot in its numbering, as in PyTorch).
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module, pyFloat } from './module.js';

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
