// Autoregressive generation for causal LMs with a key/value cache: one prefill call over the
// prompt, then one position per new token (`useCache: false` re-runs the whole prefix each
// step instead, for comparison). Token choice is nn/sampling.ts's.
import { DTypeError, ShapeError, ValueError, fmt } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { noGrad } from '../../autograd/node.js';
import { keep, tidy } from '../../tensor/scope.js';
import { tensor } from '../../ops/creation.js';
import { getRngState, manualSeed, setRngState } from '../../ops/random.js';
import { sampleLogits, type SamplingOptions } from '../sampling.js';
import type { LayerPast } from './model.js';

export interface GenerateOptions extends SamplingOptions {
  /** How many tokens to append (default 20). */
  maxNewTokens?: number;
  /**
   * Seeds nabla's RNG for this call only (the global RNG position is restored afterwards), so
   * the same seed gives the same tokens; without it the global RNG is used and advanced.
   */
  seed?: number | null;
  /** A row that produced this token is finished; it is then padded with `padTokenId`. */
  eosTokenId?: number | null;
  /** Token appended to finished rows (default eosTokenId). */
  padTokenId?: number | null;
  /** Reuse keys/values across steps (default true); false re-runs the whole prefix. */
  useCache?: boolean;
  /**
   * int32 [B, T], 1 for prompt tokens and 0 for padding (HF's attention_mask): a batch of
   * prompts of different lengths, left-padded. Positions then count real tokens only (HF's
   * cumsum(mask) - 1), and every generated token is attended to.
   */
  attentionMask?: Tensor | null;
}

/** What generate needs from a model: HF-style causal-LM forward with a cache. */
export interface CausalLM {
  readonly config: { nPositions: number; vocabSize: number };
  forward(
    inputIds: Tensor,
    opts: {
      pastKeyValues?: readonly LayerPast[] | null;
      useCache?: boolean;
      attentionMask?: Tensor | null;
      positionIds?: Tensor | null;
    },
  ): { logits: Tensor; pastKeyValues: LayerPast[] | null };
}

const OP = 'generate';

/** `inputIds` int32 [B, T] → int32 [B, T + new], new ≤ maxNewTokens (fewer if every row ended). */
export function generate(model: CausalLM, inputIds: Tensor, opts: GenerateOptions = {}): Tensor {
  if (inputIds.dtype !== 'int32') {
    throw new DTypeError(`${OP}: inputIds must be int32, got ${inputIds.dtype}`);
  }
  if (inputIds.ndim !== 2 || inputIds.shape[0] === 0 || inputIds.shape[1] === 0) {
    throw new ShapeError(
      `${OP}: inputIds must be [batch, seq] with both > 0, got ${fmt(inputIds.shape)}`,
    );
  }
  const [B, T] = inputIds.shape;
  const maxNew = opts.maxNewTokens ?? 20;
  if (!Number.isInteger(maxNew) || maxNew < 0) {
    throw new ValueError(`${OP}: maxNewTokens must be an integer >= 0, got ${maxNew}`);
  }
  const limit = model.config.nPositions;
  if (T + maxNew > limit) {
    throw new ValueError(`${OP}: ${T} prompt + ${maxNew} new tokens exceed nPositions ${limit}`);
  }
  const eos = opts.eosTokenId ?? null;
  const pad = opts.padTokenId ?? eos ?? 0;
  const useCache = opts.useCache ?? true;
  const saved = opts.seed != null ? getRngState() : null;
  if (opts.seed != null) manualSeed(opts.seed);
  const rows: number[][] = [];
  const flat = inputIds.toArray();
  for (let b = 0; b < B; b++) rows.push(Array.from(flat.subarray(b * T, (b + 1) * T)));
  const mask = promptMask(opts.attentionMask ?? null, B, T);
  // Per row: the next token's position (real tokens so far) and the mask so far.
  const nextPos = mask ? mask.map((m) => m.reduce((a, v) => a + v, 0)) : null;
  const done = new Array<boolean>(B).fill(false);
  let past: LayerPast[] | null = null;
  const release = (p: LayerPast[] | null): void =>
    p?.forEach(([k, v]) => (k.dispose(), v.dispose()));
  try {
    noGrad(() => {
      for (let step = 0; step < maxNew; step++) {
        const len = rows[0].length;
        const [tok, present] = tidy(() => {
          const feed =
            useCache && past
              ? tensor(
                  Int32Array.from(rows, (r) => r[len - 1]),
                  { shape: [B, 1] },
                )
              : tensor(Int32Array.from(rows.flat()), { shape: [B, len] });
          const masking = mask ? maskedInputs(mask, nextPos!, feed.shape[1]) : {};
          const out = model.forward(feed, {
            pastKeyValues: useCache ? past : null,
            useCache,
            ...masking,
          });
          const L = out.logits.shape[1];
          const last = out.logits.narrow(1, L - 1, 1).reshape([B, out.logits.shape[2]]);
          return [sampleLogits(last, opts), useCache ? out.pastKeyValues : null] as const;
        });
        release(past);
        past = present ? present.map(([k, v]) => [keep(k), keep(v)] as LayerPast) : null;
        const next = tok.toArray();
        tok.dispose();
        for (let b = 0; b < B; b++) {
          rows[b].push(done[b] ? pad : next[b]);
          if (mask) {
            mask[b].push(1);
            nextPos![b]++;
          }
          if (eos !== null && next[b] === eos) done[b] = true;
        }
        if (eos !== null && done.every(Boolean)) break;
      }
    });
  } finally {
    release(past);
    if (saved) setRngState(saved);
  }
  return tensor(Int32Array.from(rows.flat()), { shape: [B, rows[0].length] });
}

/** The prompt's attention mask as rows of 0/1, checked; null when none was given. */
function promptMask(m: Tensor | null, B: number, T: number): number[][] | null {
  if (m === null) return null;
  if (m.dtype !== 'int32' || m.ndim !== 2 || m.shape[0] !== B || m.shape[1] !== T) {
    throw new ShapeError(
      `${OP}: attentionMask ${m.dtype} ${fmt(m.shape)} must be int32 [${B}, ${T}] like inputIds`,
    );
  }
  const flat = m.toArray();
  const rows: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row = Array.from(flat.subarray(b * T, (b + 1) * T));
    if (row.some((v) => v !== 0 && v !== 1)) {
      throw new ValueError(`${OP}: attentionMask row ${b} must hold only 0 and 1`);
    }
    if (!row.includes(1)) throw new ValueError(`${OP}: attentionMask row ${b} has no token`);
    rows.push(row);
  }
  return rows;
}

/**
 * The mask over everything fed so far and the positions of the `fed` newest tokens: HF's
 * cumsum(mask) - 1, with padding at position 1 (its placeholder; padding is never attended).
 */
function maskedInputs(
  mask: number[][],
  nextPos: number[],
  fed: number,
): { attentionMask: Tensor; positionIds: Tensor } {
  const B = mask.length;
  const S = mask[0].length;
  const pos = new Int32Array(B * fed);
  for (let b = 0; b < B; b++) {
    let p = nextPos[b];
    for (let j = S - 1, k = fed - 1; k >= 0; j--, k--) {
      if (mask[b][j]) p--;
      pos[b * fed + k] = mask[b][j] ? p : 1;
    }
  }
  return {
    attentionMask: tensor(Int32Array.from(mask.flat()), { shape: [B, S] }),
    positionIds: tensor(pos, { shape: [B, fed] }),
  };
}
