// `nb.nn.functional`: the stateless forms of the layers (torch.nn.functional in camelCase).
// Everything composes public ops, so autograd comes for free; only dropout's mask and the
// padding-aware embedding backward call core kernels directly, for what no op expresses.
import { DTypeError, IndexError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { noGrad, record, releaseIntermediates } from '../autograd/node.js';
import { drawRandom } from '../ops/random.js';
import { linearOp } from '../ops/matmul.js';
import { layerNormOp } from '../ops/layernorm.js';
import { indexAddInto } from '../ops/indexing.js';
import { wasm } from '../wasm/core.js';
import { fillWords } from '../ops/parallel.js';

export { relu, sigmoid, tanh, gelu, leakyRelu } from '../ops/elementwise.js';
export { softmax, logSoftmax } from '../ops/softmax.js';
export { softplus, silu, mish, hardtanh, elu } from '../ops/math.js';
export {
  mseLoss,
  l1Loss,
  binaryCrossEntropy,
  binaryCrossEntropyWithLogits,
  crossEntropy,
  nllLoss,
} from './losses.js';

/** `x · weightᵀ + bias`: x is [..., in], weight [out, in], bias [out]. */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  if (weight.ndim !== 2) {
    throw new ShapeError(`linear: weight must be 2-D [out, in], got ${fmt(weight.shape)}`);
  }
  const [outF, inF] = weight.shape;
  if (x.ndim === 0 || x.shape[x.ndim - 1] !== inF) {
    throw new ShapeError(
      `linear: input ${fmt(x.shape)} must end in ${inF} features to match weight ${fmt(weight.shape)}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== outF)) {
    throw new ShapeError(
      `linear: bias ${fmt(bias.shape)} must be [${outF}] for weight ${fmt(weight.shape)}`,
    );
  }
  if (x.dtype !== 'float32' || weight.dtype !== 'float32' || (bias && bias.dtype !== 'float32')) {
    throw new DTypeError(
      `linear: expected float32 input, weight and bias, got ${x.dtype} and ${weight.dtype}`,
    );
  }
  return linearOp(x, weight, bias ?? null);
}

export interface DropoutOptions {
  /** Probability of zeroing an element; default 0.5. */
  p?: number;
  /** Dropout is applied only when true (default true, as in torch.nn.functional.dropout). */
  training?: boolean;
}

/**
 * Zeroes each element with probability `p` and scales the survivors by 1/(1-p), so the
 * expected value is unchanged. Returns `x` itself when not training or when p = 0.
 */
export function dropout(x: Tensor, opts: DropoutOptions = {}): Tensor {
  const p = opts.p ?? 0.5;
  const training = opts.training ?? true;
  if (!(p >= 0 && p <= 1)) throw new ValueError(`dropout: p must be in [0, 1], got ${p}`);
  if (!training || p === 0) return x;
  const mask = Tensor.empty(x.shape, 'float32');
  // Each mask element is 1/(1-p) with probability 1-p, else 0; p = 1 keeps nothing.
  drawRandom('rng_bernoulli_f32', mask.ptr, mask.size, 1 - p, p === 1 ? 0 : 1 / (1 - p));
  const out = x.mul(mask);
  releaseIntermediates(out, [mask]);
  return out;
}

/**
 * Normalises over the trailing `normalizedShape` dims (biased variance, `eps` added before the
 * square root), then applies `weight` and `bias`: one fused kernel each way.
 */
export function layerNorm(
  x: Tensor,
  normalizedShape: number | readonly number[],
  weight?: Tensor | null,
  bias?: Tensor | null,
  eps = 1e-5,
): Tensor {
  const shape = typeof normalizedShape === 'number' ? [normalizedShape] : [...normalizedShape];
  const k = shape.length;
  const tail = x.shape.slice(x.ndim - k);
  if (k === 0 || x.ndim < k || tail.some((s, i) => s !== shape[i])) {
    throw new ShapeError(
      `layerNorm: input ${fmt(x.shape)} must end in the normalized shape ${fmt(shape)}`,
    );
  }
  for (const [name, p] of [
    ['weight', weight],
    ['bias', bias],
  ] as const) {
    if (p && (p.ndim !== k || p.shape.some((s, i) => s !== shape[i]))) {
      throw new ShapeError(
        `layerNorm: ${name} ${fmt(p.shape)} must have the normalized shape ${fmt(shape)}`,
      );
    }
  }
  if (x.dtype !== 'float32' || [weight, bias].some((p) => p && p.dtype !== 'float32')) {
    throw new DTypeError(
      `layerNorm: expected float32 input, weight and bias, got ${[x, weight, bias]
        .filter((t) => t)
        .map((t) => t!.dtype)
        .join(', ')}`,
    );
  }
  const d = shape.reduce((a, b) => a * b, 1);
  return layerNormOp(x, d, weight ?? null, bias ?? null, eps);
}

export interface EmbeddingOptions {
  /** Row whose gradient stays zero (a padding token); negative counts from the end. */
  paddingIdx?: number | null;
}

/** Rows of `weight` ([N, dim]) picked by the int32 `indices`: shape [...indices.shape, dim]. */
export function embedding(indices: Tensor, weight: Tensor, opts: EmbeddingOptions = {}): Tensor {
  if (indices.dtype !== 'int32') {
    throw new DTypeError(`embedding: indices must be int32, got ${indices.dtype}`);
  }
  if (weight.ndim !== 2) {
    throw new ShapeError(`embedding: weight must be 2-D [num, dim], got ${fmt(weight.shape)}`);
  }
  const [num, dim] = weight.shape;
  const pad = paddingRow(opts.paddingIdx, num);
  const flat = indices.reshape([indices.size]);
  const bad = wasm().index_check_i32(flat.ptr, flat.size, num);
  if (bad >= 0) {
    const value = flat.toArray()[bad];
    flat.dispose();
    throw new IndexError(
      `embedding: index ${value} at position ${bad} is out of range for ${num} embeddings (weight ${fmt(weight.shape)})`,
    );
  }
  const outShape = [...indices.shape, dim];
  if (pad === null) {
    const rows = weight.indexSelect(0, flat);
    const out = rows.reshape(outShape);
    releaseIntermediates(out, [flat, rows]);
    return out;
  }
  // With a padding row the lookup records its own backward: indexSelect's scatter-add, then
  // the padding row's gradient is cleared, as in PyTorch.
  const rows = noGrad(() => weight.indexSelect(0, flat));
  const out = rows._alias(outShape);
  rows.dispose();
  record(
    out,
    'embedding',
    [weight],
    (g) => {
      const gw = Tensor.empty(weight.shape, 'float32');
      const core = wasm();
      fillWords(gw.ptr, gw.size, 0);
      indexAddInto(g, flat, gw, 1, num, dim);
      core.fill_u32(gw.ptr + 4 * pad * dim, dim, 0);
      return [gw];
    },
    [flat],
  );
  if (!out.requiresGrad) flat.dispose(); // nothing was recorded, so nothing reads it
  return out;
}

/** A padding index in [0, num), or null for none. */
function paddingRow(paddingIdx: number | null | undefined, num: number): number | null {
  if (paddingIdx === undefined || paddingIdx === null) return null;
  if (!Number.isInteger(paddingIdx) || paddingIdx < -num || paddingIdx >= num) {
    throw new IndexError(
      `embedding: paddingIdx ${paddingIdx} is out of range for ${num} embeddings`,
    );
  }
  return paddingIdx < 0 ? paddingIdx + num : paddingIdx;
}

export {
  pad,
  unfold,
  fold,
  type PadMode,
  type PadOptions,
  type UnfoldOptions,
} from '../ops/pad.js';

export {
  lstmCell,
  gruCell,
  rnnCell,
  lstmLayer,
  gruLayer,
  rnnLayer,
  type LstmLayerOptions,
  type RnnLayerOptions,
  type RnnNonlinearity,
} from '../ops/rnn.js';
export { scaledDotProductAttention, type SdpaOptions } from '../ops/attention.js';
export {
  conv1d,
  conv2d,
  convTranspose2d,
  type ConvOptions,
  type ConvPadding,
  type ConvTransposeOptions,
} from '../ops/conv.js';
export {
  maxPool1d,
  maxPool2d,
  avgPool1d,
  avgPool2d,
  adaptiveAvgPool1d,
  adaptiveAvgPool2d,
  adaptiveMaxPool2d,
  type MaxPoolOptions,
  type AvgPoolOptions,
} from '../ops/pool.js';
export { interpolate, type InterpolateMode, type InterpolateOptions } from '../ops/interpolate.js';
export { batchNorm, type BatchNormOptions } from './batchnorm.js';
export { dropout2d } from './spatial.js';
