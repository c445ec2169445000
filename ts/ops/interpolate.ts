// `interpolate` (torch.nn.functional.interpolate) for 1-d and 2-d inputs: 'nearest' gathers
// source rows and columns with indexSelect, '(bi)linear' multiplies by interpolation matrices
// along each spatial dim (x · Mwᵀ, then Mh · …). Source coordinates follow ATen's
// area_pixel_compute_scale / nearest_idx, including the use of 1 / scaleFactor when a scale
// factor is given.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { tensor } from './creation.js';
import { indexSelect } from './indexing.js';
import { matmul } from './matmul.js';

export type InterpolateMode = 'nearest' | 'linear' | 'bilinear';

export interface InterpolateOptions {
  /** Output spatial size (one number for every dim, or one per dim). */
  size?: number | readonly number[] | null;
  /** Multiplier of every spatial dim (or one per dim); the output size is floor(in · scale). */
  scaleFactor?: number | readonly number[] | null;
  /** Default 'nearest'. */
  mode?: InterpolateMode;
  /** Linear modes only: align the corner pixels' centres; default false. */
  alignCorners?: boolean | null;
}

/** Output sizes and the source-per-output scale ATen uses for each spatial dim. */
function plan(
  op: string,
  spatial: readonly number[],
  opts: InterpolateOptions,
): { out: number[]; scale: (number | null)[] } {
  const n = spatial.length;
  const list = (v: number | readonly number[], name: string): number[] => {
    const a = typeof v === 'number' ? Array<number>(n).fill(v) : [...v];
    if (a.length !== n) {
      throw new ValueError(
        `${op}: ${name} must have ${n} entries for input spatial dims ${fmt(spatial)}`,
      );
    }
    return a;
  };
  const hasSize = opts.size !== undefined && opts.size !== null;
  const hasScale = opts.scaleFactor !== undefined && opts.scaleFactor !== null;
  if (hasSize === hasScale) {
    throw new ValueError(`${op}: give exactly one of size and scaleFactor`);
  }
  if (hasSize) {
    const out = list(opts.size!, 'size');
    if (!out.every((s) => Number.isInteger(s) && s >= 1)) {
      throw new ValueError(
        `${op}: size must be positive integers, got ${JSON.stringify(opts.size)}`,
      );
    }
    return { out, scale: out.map(() => null) };
  }
  const f = list(opts.scaleFactor!, 'scaleFactor');
  if (!f.every((s) => Number.isFinite(s) && s > 0)) {
    throw new ValueError(
      `${op}: scaleFactor must be positive, got ${JSON.stringify(opts.scaleFactor)}`,
    );
  }
  const out = spatial.map((s, i) => Math.floor(s * f[i]));
  if (out.some((s) => s < 1)) {
    throw new ShapeError(
      `${op}: scaleFactor ${fmt(f)} gives an empty output for input dims ${fmt(spatial)}`,
    );
  }
  return { out, scale: f.map((s) => 1 / s) };
}

/** Nearest source index of every output position (ATen's nearest_idx). */
function nearestIndex(size: number, out: number, scale: number | null): Tensor {
  const s = scale ?? size / out;
  const idx = new Int32Array(out);
  for (let o = 0; o < out; o++) idx[o] = size === out ? o : Math.min(Math.floor(o * s), size - 1);
  return tensor(idx, { shape: [out], dtype: 'int32' });
}

/** [out, size] linear interpolation weights (ATen's area_pixel source index and lambdas). */
function linearMatrix(
  size: number,
  out: number,
  scale: number | null,
  alignCorners: boolean,
): Tensor {
  const m = new Float32Array(out * size);
  const s = alignCorners ? (out > 1 ? (size - 1) / (out - 1) : 0) : (scale ?? size / out);
  for (let o = 0; o < out; o++) {
    const src = alignCorners ? o * s : Math.max((o + 0.5) * s - 0.5, 0);
    const i0 = Math.min(Math.floor(src), size - 1);
    const i1 = Math.min(i0 + 1, size - 1);
    const l1 = src - i0;
    m[o * size + i0] += 1 - l1;
    m[o * size + i1] += l1;
  }
  return tensor(m, { shape: [out, size] });
}

/** `torch.nn.functional.interpolate` for [N, C, L] (nearest, linear) and [N, C, H, W]
 * (nearest, bilinear). */
export function interpolate(x: Tensor, opts: InterpolateOptions = {}): Tensor {
  const op = 'interpolate';
  const mode = opts.mode ?? 'nearest';
  if (x.dtype !== 'float32') throw new DTypeError(`${op}: expected float32, got ${x.dtype}`);
  if (x.ndim !== 3 && x.ndim !== 4) {
    throw new ShapeError(
      `${op}: expected a 3-D [N, C, L] or 4-D [N, C, H, W] input, got ${fmt(x.shape)}`,
    );
  }
  const want = x.ndim === 3 ? 'linear' : 'bilinear';
  if (mode !== 'nearest' && mode !== want) {
    throw new ValueError(
      `${op}: mode '${mode}' needs a ${mode === 'linear' ? 3 : 4}-D input, got ${fmt(x.shape)}`,
    );
  }
  if (mode === 'nearest' && opts.alignCorners != null) {
    throw new ValueError(
      `${op}: alignCorners can only be set with the linear modes, not 'nearest'`,
    );
  }
  const spatial = x.shape.slice(2);
  const { out, scale } = plan(op, spatial, opts);
  const last = x.ndim - 1;
  if (mode === 'nearest') {
    let y = indexSelect(x, last, nearestIndex(spatial.at(-1)!, out.at(-1)!, scale.at(-1)!));
    if (x.ndim === 4) y = indexSelect(y, 2, nearestIndex(spatial[0], out[0], scale[0]));
    return y;
  }
  const align = opts.alignCorners ?? false;
  let y = matmul(x, linearMatrix(spatial.at(-1)!, out.at(-1)!, scale.at(-1)!, align), {
    transB: true,
  });
  if (x.ndim === 4) y = matmul(linearMatrix(spatial[0], out[0], scale[0], align), y);
  return y;
}
