// The tiny GPT of the `gpt` and `kvcache` workloads on nabla's side (`nn.GPT2LMHeadModel`), and
// the token data every library trains on. torch_attention.py writes the same GPT-2 in torch.
import * as nb from 'nabla';
import { rng } from '../lib/random.mjs';

/**
 * `count` batches of `batch` × `seqLen` int32 tokens from a sparse Markov chain (each token has
 * three possible successors), so the loss can fall well below ln(vocab) within a few hundred
 * steps. torch_attention.py draws the identical tokens with the same generator.
 */
export function markovBatches({ vocab, batch, seqLen, count, seed }) {
  const r = rng(seed);
  const next = Array.from({ length: vocab }, () =>
    Array.from({ length: 3 }, () => Math.floor(r() * vocab)),
  );
  const out = [];
  for (let b = 0; b < count; b++) {
    const ids = new Int32Array(batch * seqLen);
    for (let row = 0; row < batch; row++) {
      let t = Math.floor(r() * vocab);
      for (let i = 0; i < seqLen; i++) {
        ids[row * seqLen + i] = t;
        t = next[t][Math.floor(r() * 3)];
      }
    }
    out.push(ids);
  }
  return out;
}

/** nabla's GPT-2 LM with dropout off, as a user builds it. */
export function makeGpt(c) {
  const config = new nb.nn.GPT2Config({ residPdrop: 0, embdPdrop: 0, attnPdrop: 0, ...c });
  return { model: new nb.nn.GPT2LMHeadModel(config), via: 'nn.GPT2LMHeadModel' };
}
