// Masked-language-model inputs the way HF's DataCollatorForLanguageModeling draws them: each
// non-special token is chosen with probability mlmProbability; a chosen token becomes
// [MASK] 80% of the time, a random token 10%, stays 10%; labels hold the original id at
// chosen positions and -100 elsewhere (ignored by the MLM loss).
import { ValueError, DTypeError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { tensor } from '../../ops/creation.js';
import { nextKey } from '../../ops/random.js';

export interface MaskTokensOptions {
  /** Probability that a token is chosen for prediction (default 0.15). */
  mlmProbability?: number;
  /** The [MASK] token's id. */
  maskTokenId: number;
  /** Random replacements are drawn from [0, vocabSize). */
  vocabSize: number;
  /** Ids never chosen ([CLS], [SEP], [PAD], …). */
  specialIds?: readonly number[];
  /** Makes the draw reproducible; default: a key from nabla's generator (`manualSeed`). */
  seed?: number;
}

export interface MaskedTokens {
  /** int32, like ids: the model's input. */
  inputIds: Tensor;
  /** int32, like ids: the original id where chosen, -100 elsewhere. */
  labels: Tensor;
}

const OP = 'maskTokens';

/** `ids` int32 (any shape) → masked inputs and MLM labels, new tensors. */
export function maskTokens(ids: Tensor, opts: MaskTokensOptions): MaskedTokens {
  if (ids.dtype !== 'int32') throw new DTypeError(`${OP}: ids must be int32, got ${ids.dtype}`);
  const p = opts.mlmProbability ?? 0.15;
  if (!(p >= 0 && p <= 1))
    throw new ValueError(`${OP}: mlmProbability must be in [0, 1], got ${p}`);
  const V = opts.vocabSize;
  if (!Number.isInteger(V) || V <= 0) {
    throw new ValueError(`${OP}: vocabSize must be a positive integer, got ${V}`);
  }
  const mask = opts.maskTokenId;
  if (!Number.isInteger(mask) || mask < 0 || mask >= V) {
    throw new ValueError(`${OP}: maskTokenId must be in [0, ${V}), got ${mask}`);
  }
  const special = new Set(opts.specialIds ?? []);
  const rand = mulberry32(opts.seed ?? keySeed());
  const src = ids.toArray() as Int32Array;
  const input = Int32Array.from(src);
  const labels = new Int32Array(src.length).fill(-100);
  for (let i = 0; i < src.length; i++) {
    // Four draws per token whatever happens, so one position's fate never shifts the others'.
    const chosen = rand() < p;
    const r1 = rand();
    const r2 = rand();
    const rid = Math.floor(rand() * V);
    if (!chosen || special.has(src[i])) continue;
    labels[i] = src[i];
    if (r1 < 0.8) input[i] = mask;
    else if (r2 < 0.5) input[i] = rid;
  }
  return {
    inputIds: tensor(input, { shape: ids.shape }),
    labels: tensor(labels, { shape: ids.shape }),
  };
}

/** A 32-bit seed from nabla's generator: a new one per call, fixed by `manualSeed`. */
function keySeed(): number {
  const [hi, lo] = nextKey();
  return (hi ^ Math.imul(lo + 1, 0x9e3779b1)) >>> 0;
}

/** A small seeded generator of floats in [0, 1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
