// Next-token selection for generation, as Hugging Face's logits warpers apply it: temperature,
// then top-k, then top-p (nucleus), then a multinomial draw; greedy (argmax) without sampling.
// Built from existing ops (topk, sort, softmax, cumsum, scatter, multinomial) under noGrad.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { noGrad } from '../autograd/node.js';
import { tidy } from '../tensor/scope.js';
import { zeros } from '../ops/creation.js';
import { cat } from '../ops/shape.js';
import { where } from '../ops/elementwise.js';
import { softmax } from '../ops/softmax.js';
import { cumsum } from '../ops/reduce.js';
import { sort, topk } from '../ops/sort.js';
import { scatter } from '../ops/indexing.js';
import { multinomial } from '../ops/random.js';

export interface SamplingOptions {
  /** Divides the logits (default 1); 0 means greedy. */
  temperature?: number;
  /** Keep only the k highest logits (ties with the k-th kept, as HF); null/undefined = all. */
  topK?: number | null;
  /**
   * Keep the smallest set of most likely tokens whose probabilities sum to at least topP
   * (always at least one token); in (0, 1], null/undefined/1 = all.
   */
  topP?: number | null;
  /** Draw from the filtered distribution (default true); false is greedy (argmax). */
  doSample?: boolean;
}

function check2d(op: string, logits: Tensor): [number, number] {
  if (logits.dtype !== 'float32') {
    throw new DTypeError(`${op}: logits must be float32, got ${logits.dtype}`);
  }
  if (logits.ndim !== 2 || logits.shape[1] === 0) {
    throw new ShapeError(
      `${op}: logits must be [batch, vocab] with vocab > 0, got ${fmt(logits.shape)}`,
    );
  }
  return [logits.shape[0], logits.shape[1]];
}

function checkOptions(op: string, opts: SamplingOptions): void {
  const t = opts.temperature ?? 1;
  if (!(Number.isFinite(t) && t >= 0)) {
    throw new ValueError(`${op}: temperature must be a finite number >= 0, got ${t}`);
  }
  const k = opts.topK;
  if (k != null && !(Number.isInteger(k) && k > 0)) {
    throw new ValueError(`${op}: topK must be a positive integer, got ${k}`);
  }
  const p = opts.topP;
  if (p != null && !(p > 0 && p <= 1)) {
    throw new ValueError(`${op}: topP must be in (0, 1], got ${p}`);
  }
}

/**
 * `logits [B, V]` → the same logits with `-Infinity` for every token that temperature, top-k
 * and top-p remove (temperature divides the kept logits; 0 is treated as 1 here, since greedy
 * selection needs no filtering).
 */
export function filterLogits(logits: Tensor, opts: SamplingOptions = {}): Tensor {
  const [B, V] = check2d('filterLogits', logits);
  checkOptions('filterLogits', opts);
  const t = opts.temperature ?? 1;
  const k = opts.topK ?? null;
  const p = opts.topP ?? null;
  return noGrad(() =>
    tidy(() => {
      let x = t !== 1 && t !== 0 ? logits.div(t) : logits.detach();
      if (k !== null && k < V) {
        const [vals] = topk(x, k, -1);
        const kth = vals.narrow(1, k - 1, 1);
        x = where(x.lt(kth), -Infinity, x);
      }
      if (p !== null && p < 1) {
        const [sorted, order] = sort(x, -1, true);
        const probs = softmax(sorted, -1);
        // Probability mass strictly before each sorted position: a token stays while the more
        // likely ones sum to less than p, so the first always stays.
        const before =
          V === 1 ? zeros([B, 1]) : cat([zeros([B, 1]), cumsum(probs, -1).narrow(1, 0, V - 1)], 1);
        const dropSorted = before.ge(p);
        const drop = scatter(zeros([B, V], { dtype: 'int32' }), 1, order, dropSorted);
        x = where(drop, -Infinity, x);
      }
      return x;
    }),
  );
}

/**
 * One token per row of `logits [B, V]` as int32 `[B]`: argmax when `doSample` is false or
 * temperature is 0, else a multinomial draw (nabla's seeded RNG) from softmax of the filtered
 * logits.
 */
export function sampleLogits(logits: Tensor, opts: SamplingOptions = {}): Tensor {
  const [B] = check2d('sampleLogits', logits);
  checkOptions('sampleLogits', opts);
  const greedy = opts.doSample === false || opts.temperature === 0;
  return noGrad(() =>
    tidy(() => {
      if (greedy) return logits.argmax(-1);
      const probs = softmax(filterLogits(logits, opts), -1);
      return multinomial(probs, 1).reshape([B]);
    }),
  );
}
