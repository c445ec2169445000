// Text generation for the example: `model.generate` (nn.GPT2LMHeadModel's, with its key/value
// cache, so each new token costs one position) continues the context in pieces that fit
// nPositions; when the context is full, the next piece starts from its last half.
import * as nb from 'nabla';

/**
 * Continues `prompt` (an array of ids) by `maxNewTokens` ids with `model.generate`
 * (temperature, topK, topP, seed, … passed through). Returns prompt + new ids.
 */
export function generateIds(model, prompt, { maxNewTokens, ...opts }) {
  const limit = model.config.nPositions;
  const out = [...prompt];
  let left = maxNewTokens;
  while (left > 0) {
    const context = out.length < limit ? out.slice() : out.slice(-(limit >> 1));
    const n = Math.min(left, limit - context.length);
    const ids = nb.tensor([context], { dtype: 'int32' });
    const next = Array.from(model.generate(ids, { ...opts, maxNewTokens: n }).toArray());
    const fresh = next.slice(context.length);
    out.push(...fresh);
    left -= n;
    if (fresh.length < n) break; // stopped at eosTokenId
    if (opts.seed != null) opts.seed += 1; // a fresh stream for the next piece
  }
  return out;
}
