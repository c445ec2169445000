// Convolution modules with PyTorch's names, options, defaults, initialisation and repr:
// Conv1d, Conv2d (zeros/reflect/replicate/circular padding modes) and ConvTranspose2d.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { zeros } from '../ops/creation.js';
import { pad, type PadMode } from '../ops/pad.js';
import {
  conv1d,
  conv2d,
  convPadding,
  convTranspose2d,
  convTuple,
  type ConvPadding,
} from '../ops/conv.js';
import { Module, Parameter, pyBool, pyTuple } from './module.js';
import * as init from './init.js';

export type ConvPaddingMode = 'zeros' | 'reflect' | 'replicate' | 'circular';

export interface ConvModuleOptions {
  /** Default 1. */
  stride?: number | readonly number[];
  /** Default 0; also 'same' or 'valid'. */
  padding?: ConvPadding;
  /** Default 1. */
  dilation?: number | readonly number[];
  /** Default 1. */
  groups?: number;
  /** Default true. */
  bias?: boolean;
  /** How the padding is filled; default 'zeros'. */
  paddingMode?: ConvPaddingMode;
}

export interface ConvTransposeModuleOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
  outputPadding?: number | readonly number[];
  groups?: number;
  bias?: boolean;
  dilation?: number | readonly number[];
  /** Only 'zeros', as in PyTorch. */
  paddingMode?: 'zeros';
}

const MODES: readonly ConvPaddingMode[] = ['zeros', 'reflect', 'replicate', 'circular'];

function checkChannels(op: string, inChannels: number, outChannels: number, groups: number): void {
  for (const [name, v] of [
    ['inChannels', inChannels],
    ['outChannels', outChannels],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) {
      throw new ValueError(`${op}: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (!Number.isInteger(groups) || groups < 1) {
    throw new ValueError(`${op}: groups must be a positive integer, got ${groups}`);
  }
  if (inChannels % groups !== 0) {
    throw new ValueError(
      `${op}: inChannels must be divisible by groups (${inChannels}, ${groups})`,
    );
  }
  if (outChannels % groups !== 0) {
    throw new ValueError(
      `${op}: outChannels must be divisible by groups (${outChannels}, ${groups})`,
    );
  }
}

/** PyTorch's `reset_parameters` for every conv: kaiming-uniform (a = √5), bias U(±1/√fanIn). */
function resetConv(weight: Tensor, bias: Tensor | null): void {
  init.kaimingUniform_(weight, { a: Math.sqrt(5) });
  if (bias) {
    const { fanIn } = init.calculateFanInAndFanOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    init.uniform_(bias, -bound, bound);
  }
}

/** The part of PyTorch's `extra_repr` every conv shares. */
function convRepr(m: {
  inChannels: number;
  outChannels: number;
  kernelSize: number[];
  stride: number[];
  padding: number[] | 'same' | 'valid';
  dilation: number[];
  outputPadding?: number[];
  groups: number;
  bias: Tensor | null;
  paddingMode: string;
}): string {
  const allAre = (v: number[], x: number) => v.every((s) => s === x);
  let s = `${m.inChannels}, ${m.outChannels}, kernel_size=${pyTuple(m.kernelSize)}, stride=${pyTuple(m.stride)}`;
  if (typeof m.padding === 'string') s += `, padding=${m.padding}`;
  else if (!allAre(m.padding, 0)) s += `, padding=${pyTuple(m.padding)}`;
  if (!allAre(m.dilation, 1)) s += `, dilation=${pyTuple(m.dilation)}`;
  if (m.outputPadding && !allAre(m.outputPadding, 0)) {
    s += `, output_padding=${pyTuple(m.outputPadding)}`;
  }
  if (m.groups !== 1) s += `, groups=${m.groups}`;
  if (!m.bias) s += `, bias=${pyBool(false)}`;
  if (m.paddingMode !== 'zeros') s += `, padding_mode=${m.paddingMode}`;
  return s;
}

/** Conv1d and Conv2d: `nd` spatial dims. */
abstract class ConvNd extends Module {
  /** [outChannels, inChannels / groups, ...kernelSize]. */
  weight: Tensor;
  /** [outChannels], or null with `{bias: false}`. */
  bias: Tensor | null;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[] | 'same' | 'valid';
  readonly dilation: number[];
  readonly groups: number;
  readonly paddingMode: ConvPaddingMode;
  /** The `pad` amounts (last dim first) a non-zeros padding mode applies before the conv. */
  private readonly modePad: number[] | null;

  constructor(
    op: string,
    private readonly nd: number,
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly number[],
    opts: ConvModuleOptions,
  ) {
    super();
    this.groups = opts.groups ?? 1;
    checkChannels(op, inChannels, outChannels, this.groups);
    this.kernelSize = convTuple(op, 'kernelSize', kernelSize, nd, 1);
    this.stride = convTuple(op, 'stride', opts.stride ?? 1, nd, 1);
    this.dilation = convTuple(op, 'dilation', opts.dilation ?? 1, nd, 1);
    const p = opts.padding ?? 0;
    const pads = convPadding(op, p, this.kernelSize, this.dilation, this.stride);
    this.padding = p === 'same' || p === 'valid' ? p : pads.symmetric;
    this.paddingMode = opts.paddingMode ?? 'zeros';
    if (!MODES.includes(this.paddingMode)) {
      throw new ValueError(
        `${op}: paddingMode must be one of ${MODES.map((m) => `'${m}'`).join(', ')}, got '${String(this.paddingMode)}'`,
      );
    }
    // PyTorch's _reversed_padding_repeated_twice: 'same' splits each total, extra after.
    const reversed: number[] = [];
    for (let i = nd - 1; i >= 0; i--) {
      if (p === 'same') {
        const total = this.dilation[i] * (this.kernelSize[i] - 1);
        reversed.push(Math.floor(total / 2), total - Math.floor(total / 2));
      } else {
        reversed.push(pads.symmetric[i], pads.symmetric[i]);
      }
    }
    this.modePad = this.paddingMode === 'zeros' ? null : reversed;
    this.weight = Parameter(zeros([outChannels, inChannels / this.groups, ...this.kernelSize]));
    this.bias = (opts.bias ?? true) ? Parameter(zeros([outChannels])) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    resetConv(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    const f = this.nd === 1 ? conv1d : conv2d;
    const common = { stride: this.stride, dilation: this.dilation, groups: this.groups };
    if (!this.modePad) return f(x, this.weight, this.bias, { ...common, padding: this.padding });
    const padded = pad(x, this.modePad, { mode: this.paddingMode as PadMode });
    return f(padded, this.weight, this.bias, { ...common, padding: 0 });
  }

  override extraRepr(): string {
    return convRepr(this);
  }
}

/** `torch.nn.Conv2d`: [N, C, H, W] (or [C, H, W]) → [N, outChannels, H', W']. */
export class Conv2d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | readonly number[],
    opts: ConvModuleOptions = {},
  ) {
    super('Conv2d', 2, inChannels, outChannels, kernelSize, opts);
  }
}

/** `torch.nn.Conv1d`: [N, C, L] (or [C, L]) → [N, outChannels, L']. */
export class Conv1d extends ConvNd {
  constructor(
    inChannels: number,
    outChannels: number,
    kernelSize: number | readonly number[],
    opts: ConvModuleOptions = {},
  ) {
    super('Conv1d', 1, inChannels, outChannels, kernelSize, opts);
  }
}

/** `torch.nn.ConvTranspose2d`: weight [inChannels, outChannels / groups, kH, kW]. */
export class ConvTranspose2d extends Module {
  weight: Tensor;
  bias: Tensor | null;
  readonly kernelSize: number[];
  readonly stride: number[];
  readonly padding: number[];
  readonly outputPadding: number[];
  readonly dilation: number[];
  readonly groups: number;
  readonly paddingMode = 'zeros';

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number | readonly number[],
    opts: ConvTransposeModuleOptions = {},
  ) {
    super();
    const op = 'ConvTranspose2d';
    this.groups = opts.groups ?? 1;
    checkChannels(op, inChannels, outChannels, this.groups);
    if ((opts.paddingMode ?? 'zeros') !== 'zeros') {
      throw new ValueError(`${op}: only 'zeros' padding mode is supported`);
    }
    this.kernelSize = convTuple(op, 'kernelSize', kernelSize, 2, 1);
    this.stride = convTuple(op, 'stride', opts.stride ?? 1, 2, 1);
    this.padding = convTuple(op, 'padding', opts.padding ?? 0, 2, 0);
    this.outputPadding = convTuple(op, 'outputPadding', opts.outputPadding ?? 0, 2, 0);
    this.dilation = convTuple(op, 'dilation', opts.dilation ?? 1, 2, 1);
    this.weight = Parameter(zeros([inChannels, outChannels / this.groups, ...this.kernelSize]));
    this.bias = (opts.bias ?? true) ? Parameter(zeros([outChannels])) : null;
    this.resetParameters();
  }

  resetParameters(): void {
    resetConv(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      outputPadding: this.outputPadding,
      groups: this.groups,
      dilation: this.dilation,
    });
  }

  override extraRepr(): string {
    return convRepr(this);
  }
}
