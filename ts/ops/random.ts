// Reproducible randomness. The core's generators are counter-based: a call's numbers are a
// pure function of a 64-bit key, so the state here is just a seed and a call counter.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import { Tensor } from '../tensor/tensor.js';
import { wasm } from '../wasm/core.js';
import { noGrad } from '../autograd/node.js';
import { castTo, copyStrided } from './copy.js';
import { topk } from './sort.js';
import { sub } from './elementwise.js';
import { runSplitOrWhole, splitItems } from './parallel.js';

let seedWord = (Math.random() * 2 ** 32) >>> 0;
let counter = 0;

/** Makes every later random op (`rand`, `randn`, `randint`, dropout, init) reproducible. */
export function manualSeed(seed: number): void {
  if (!Number.isFinite(seed))
    throw new ValueError(`manualSeed: seed must be a finite number, got ${seed}`);
  seedWord = Math.trunc(seed) >>> 0;
  counter = 0;
}

/** The key for the next random call: [hi, lo] words, distinct for every call after a seed. */
export function nextKey(): [number, number] {
  const key: [number, number] = [seedWord, counter];
  // The key only holds 32 bits of the counter, so it wraps there (a float past 2^53 would
  // stop counting and repeat one stream for ever).
  counter = (counter + 1) % 2 ** 32;
  return key;
}

/** The core's generators, each `(out, n, key_hi, key_lo, a, b, begin, end)`. */
export type RandomKernel =
  'rng_uniform_f32' | 'rng_normal_f32' | 'rng_randint_i32' | 'rng_bernoulli_f32';

/**
 * Random draws split over the pool from this many elements, a normal counting 8 (it costs
 * 13-19 ns against 2-4 for a uniform or dropout draw). On 2 threads against 1, best of 100, a
 * dropout mask of 2^13 was slower split and one of 2^14 faster.
 */
const RANDOM_SPLIT_MIN = 1 << 14;

/**
 * Fills the `n` words at `out` from generator `fn` with the next key and parameters `a`, `b`.
 * Each element is a pure function of the key and its index, so the pool splits the elements
 * (at even points: normals come in Box–Muller pairs) and every thread count gives the same bits.
 */
export function drawRandom(fn: RandomKernel, out: number, n: number, a: number, b: number): void {
  const [hi, lo] = nextKey();
  runSplitOrWhole({
    fn,
    length: n,
    align: 2,
    work: fn === 'rng_normal_f32' ? 8 * n : n,
    minWork: RANDOM_SPLIT_MIN,
    redo: true,
    args: (begin, end) => [out, n, hi, lo, a, b, begin, end],
  });
}

/** The generator's position, for checkpoints that must resume random streams exactly. */
export function getRngState(): { seed: number; counter: number } {
  return { seed: seedWord, counter };
}

export interface RngState {
  seed: number;
  counter: number;
}

/**
 * Checks a saved generator position without applying it: an object whose `seed` is an integer
 * in [0, 2^32) and whose `counter` is a non-negative safe integer. Throws a ValueError naming
 * `op` and the bad value.
 */
export function checkRngState(op: string, state: unknown): RngState {
  if (state === null || typeof state !== 'object' || Array.isArray(state)) {
    throw new ValueError(
      `${op}: the RNG state must be an object { seed, counter }, got ${show(state)}`,
    );
  }
  const { seed, counter: c } = state as Record<string, unknown>;
  if (!Number.isInteger(seed) || (seed as number) < 0 || (seed as number) >= 2 ** 32) {
    throw new ValueError(`${op}: RNG seed must be an integer in [0, 2^32), got ${show(seed)}`);
  }
  if (!Number.isSafeInteger(c) || (c as number) < 0) {
    throw new ValueError(`${op}: RNG counter must be a non-negative safe integer, got ${show(c)}`);
  }
  return { seed: seed as number, counter: c as number };
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(v));

export function setRngState(state: RngState): void {
  const checked = checkRngState('setRngState', state);
  seedWord = checked.seed;
  counter = checked.counter % 2 ** 32;
}

// ------------------------------------------------------------------ sampling

export interface MultinomialOptions {
  /** Draw with replacement (default false, as torch). */
  replacement?: boolean;
}

/**
 * `torch.multinomial`: `numSamples` category indices (int32) per row of `probs` (a 1-D vector or
 * `[rows, categories]`), drawn with probability proportional to the row's weights. Without
 * replacement the indices in a row are distinct: each row keeps the `numSamples` largest
 * `log(1 - u) / p` keys (exponential races), which draws sequentially without replacement.
 */
export function multinomial(
  probs: Tensor,
  numSamples: number,
  opts: MultinomialOptions = {},
): Tensor {
  const replacement = opts.replacement ?? false;
  if (probs.ndim !== 1 && probs.ndim !== 2) {
    throw new ShapeError(`multinomial: probs must be 1-d or 2-d, got shape ${fmt(probs.shape)}`);
  }
  if (probs.dtype !== 'float32') {
    throw new DTypeError(`multinomial: probs must be float32, got ${probs.dtype}`);
  }
  const cats = probs.shape[probs.ndim - 1];
  const rows = probs.ndim === 2 ? probs.shape[0] : 1;
  if (!Number.isInteger(numSamples) || numSamples <= 0) {
    throw new ValueError(`multinomial: numSamples must be a positive integer, got ${numSamples}`);
  }
  if (cats === 0) throw new ShapeError(`multinomial: probs ${fmt(probs.shape)} has no categories`);
  if (!replacement && numSamples > cats) {
    throw new ValueError(
      `multinomial: cannot draw ${numSamples} samples without replacement from ${cats} categories (probs ${fmt(probs.shape)})`,
    );
  }
  const p = probs.detach();
  noGrad(() => checkRows(p, rows, cats, replacement ? 1 : numSamples));
  const outShape = probs.ndim === 2 ? [rows, numSamples] : [numSamples];
  const out = Tensor.empty(outShape, 'int32');
  if (replacement) {
    const u = Tensor.empty([rows * numSamples], 'float32');
    drawRandom('rng_uniform_f32', u.ptr, u.size, 0, 1);
    // Rows are independent: each thread builds a row's cumulative sums in its own scratch.
    splitItems(
      'multinomial_f32',
      rows,
      rows * (cats + numSamples),
      (b, e, scratch) => [p.ptr, u.ptr, out.ptr, scratch, cats, numSamples, b, e],
      { scratch: 2 * cats }, // cats f64
    );
    [u, p].forEach((t) => t.dispose());
    return out;
  }
  const picked = noGrad(() => {
    const u = Tensor.empty(p.shape, 'float32');
    drawRandom('rng_uniform_f32', u.ptr, u.size, 0, 1);
    // log(1 - u) is in (-inf, 0]; zero-probability categories get -inf and come last.
    const oneMinus = sub(1, u);
    const logs = oneMinus.log();
    const keys = logs.div(p);
    const zero = p.eq(0);
    const masked = keys.maskedFill(zero, -Infinity);
    const [v, i] = topk(masked, numSamples, -1, true);
    [u, oneMinus, logs, keys, zero, masked, v].forEach((t) => t.dispose());
    return i;
  });
  copyStrided(picked, 0, out, 0, [out.size], [1], [1]);
  picked.dispose();
  p.dispose();
  return out;
}

/**
 * The errors torch raises for a bad distribution: negative, infinite or NaN entries, a row
 * summing to zero, or (without replacement) fewer positive categories than samples.
 */
function checkRows(p: Tensor, rows: number, cats: number, needPositive: number): void {
  if (rows === 0) return;
  const v = p.toArray();
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    let positive = 0;
    for (let c = 0; c < cats; c++) {
      const x = v[r * cats + c] as number;
      if (!(x >= 0) || !Number.isFinite(x)) {
        throw new ValueError(
          `multinomial: probs ${fmt(p.shape)} contain ${x} in row ${r} (entries must be finite and >= 0)`,
        );
      }
      sum += x;
      if (x > 0) positive++;
    }
    if (!(sum > 0) || !Number.isFinite(sum)) {
      throw new ValueError(
        `multinomial: row ${r} of probs ${fmt(p.shape)} sums to ${sum} (must be positive and finite)`,
      );
    }
    if (positive < needPositive) {
      throw new ValueError(
        `multinomial: row ${r} of probs ${fmt(p.shape)} has ${positive} non-zero categories, too few for ${needPositive} samples without replacement`,
      );
    }
  }
}

/** `torch.randperm`: a random permutation of `0..n-1`, int32 (float32 with `dtype`). */
export function randperm(n: number, opts: { dtype?: 'float32' | 'int32' } = {}): Tensor {
  if (!Number.isInteger(n) || n < 0) {
    throw new ValueError(`randperm: n must be a non-negative integer, got ${n}`);
  }
  const core = wasm();
  const u = Tensor.empty([n], 'float32');
  drawRandom('rng_uniform_f32', u.ptr, n, 0, 1);
  const out = Tensor.empty([n], 'int32');
  if (n > 0) core.shuffle_i32(u.ptr, out.ptr, n);
  u.dispose();
  if ((opts.dtype ?? 'int32') === 'int32') return out;
  const f = castTo(out, 'float32');
  out.dispose();
  return f;
}
