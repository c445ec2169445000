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
}

/** What generate needs from a model: HF-style causal-LM forward with a cache. */
export interface CausalLM {
  readonly config: { nPositions: number; vocabSize: number };
  forward(
    inputIds: Tensor,
    opts: { pastKeyValues?: readonly LayerPast[] | null; useCache?: boolean },
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
          const out = model.forward(feed, { pastKeyValues: useCache ? past : null, useCache });
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
