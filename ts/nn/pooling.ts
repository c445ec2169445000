// Pooling modules with PyTorch's names, options, defaults and repr: MaxPool1d/2d, AvgPool1d/2d,
// AdaptiveAvgPool1d/2d, AdaptiveMaxPool2d. No parameters; the work is in ts/ops/pool.ts.
import type { Tensor } from '../tensor/tensor.js';
import {
  adaptiveAvgPool1d,
  adaptiveAvgPool2d,
  adaptiveMaxPool2d,
  avgPool1d,
  avgPool2d,
  maxPool1d,
  maxPool2d,
  type AvgPoolOptions,
  type MaxPoolOptions,
} from '../ops/pool.js';
import { Module, pyBool } from './module.js';

type Size = number | readonly number[];

/** PyTorch prints an int option as an int and a tuple as a tuple. */
function pySize(v: Size | readonly (number | null)[]): string {
  if (typeof v === 'number') return String(v);
  const items = v.map((x) => (x === null ? 'None' : String(x)));
  return items.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
}

abstract class MaxPoolNd extends Module {
  readonly stride: Size;
  readonly padding: Size;
  readonly dilation: Size;
  readonly returnIndices: boolean;
  readonly ceilMode: boolean;

  constructor(
    readonly kernelSize: Size,
    opts: MaxPoolOptions,
  ) {
    super();
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.dilation = opts.dilation ?? 1;
    this.returnIndices = opts.returnIndices ?? false;
    this.ceilMode = opts.ceilMode ?? false;
  }

  protected options(): MaxPoolOptions {
    return {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      ceilMode: this.ceilMode,
      returnIndices: this.returnIndices,
    };
  }

  override extraRepr(): string {
    return (
      `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${pySize(this.padding)}, ` +
      `dilation=${pySize(this.dilation)}, ceil_mode=${pyBool(this.ceilMode)}`
    );
  }
}

/** `torch.nn.MaxPool2d`; with `returnIndices`, forward gives [output, indices]. */
export class MaxPool2d extends MaxPoolNd {
  constructor(kernelSize: Size, opts: MaxPoolOptions = {}) {
    super(kernelSize, opts);
  }

  forward(x: Tensor): Tensor | [Tensor, Tensor] {
    return maxPool2d(x, this.kernelSize, this.options());
  }
}

/** `torch.nn.MaxPool1d`; with `returnIndices`, forward gives [output, indices]. */
export class MaxPool1d extends MaxPoolNd {
  constructor(kernelSize: Size, opts: MaxPoolOptions = {}) {
    super(kernelSize, opts);
  }

  forward(x: Tensor): Tensor | [Tensor, Tensor] {
    return maxPool1d(x, this.kernelSize, this.options());
  }
}

abstract class AvgPoolNd extends Module {
  readonly stride: Size;
  readonly padding: Size;
  readonly ceilMode: boolean;
  readonly countIncludePad: boolean;

  constructor(
    readonly kernelSize: Size,
    opts: AvgPoolOptions,
  ) {
    super();
    this.stride = opts.stride ?? kernelSize;
    this.padding = opts.padding ?? 0;
    this.ceilMode = opts.ceilMode ?? false;
    this.countIncludePad = opts.countIncludePad ?? true;
  }

  override extraRepr(): string {
    return `kernel_size=${pySize(this.kernelSize)}, stride=${pySize(this.stride)}, padding=${pySize(this.padding)}`;
  }
}

/** `torch.nn.AvgPool2d`. */
export class AvgPool2d extends AvgPoolNd {
  readonly divisorOverride: number | null;

  constructor(kernelSize: Size, opts: AvgPoolOptions = {}) {
    super(kernelSize, opts);
    this.divisorOverride = opts.divisorOverride ?? null;
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad,
      divisorOverride: this.divisorOverride,
    });
  }
}

/** `torch.nn.AvgPool1d`. */
export class AvgPool1d extends AvgPoolNd {
  constructor(kernelSize: Size, opts: Omit<AvgPoolOptions, 'divisorOverride'> = {}) {
    super(kernelSize, opts);
  }

  forward(x: Tensor): Tensor {
    return avgPool1d(x, this.kernelSize, {
      stride: this.stride,
      padding: this.padding,
      ceilMode: this.ceilMode,
      countIncludePad: this.countIncludePad,
    });
  }

  override extraRepr(): string {
    // PyTorch's AvgPool1d prints its options as 1-tuples.
    const one = (v: Size) => pySize(typeof v === 'number' ? [v] : v);
    return `kernel_size=${one(this.kernelSize)}, stride=${one(this.stride)}, padding=${one(this.padding)}`;
  }
}

/** `torch.nn.AdaptiveAvgPool2d`: outputSize a number or [h, w] (null keeps the input's). */
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: number | readonly (number | null)[]) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=${pySize(this.outputSize)}`;
  }
}

/** `torch.nn.AdaptiveAvgPool1d`. */
export class AdaptiveAvgPool1d extends Module {
  constructor(readonly outputSize: number | readonly number[]) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool1d(x, this.outputSize);
  }

  override extraRepr(): string {
    return `output_size=${pySize(this.outputSize)}`;
  }
}

/** `torch.nn.AdaptiveMaxPool2d`; with `returnIndices`, forward gives [output, indices]. */
export class AdaptiveMaxPool2d extends Module {
  constructor(
    readonly outputSize: number | readonly (number | null)[],
    readonly returnIndices = false,
  ) {
    super();
  }

  forward(x: Tensor): Tensor | [Tensor, Tensor] {
    return adaptiveMaxPool2d(x, this.outputSize, { returnIndices: this.returnIndices });
  }

  override extraRepr(): string {
    return `output_size=${pySize(this.outputSize)}`;
  }
}
