// The character-LSTM workload's data: fixed token batches from a seeded Markov chain, made once
// by the parent and read by every child (JS and Python), so all libraries train on the same
// tokens. Each token has a few possible successors, so the next token is learnable and the
// loss falls from ln(vocab) within a few Adam steps; uniform random tokens would leave nothing
// to learn and no falling loss to check.
import { rng } from './random.mjs';

/**
 * `batches` batches of `batch` rows of `seq + 1` tokens (inputs are the first `seq`, targets
 * the last `seq`), row-major in one Int32Array.
 */
export function tokenBatches({ vocab, seq, batch, batches, successors, seed }) {
  const r = rng(seed);
  const pick = (n) => Math.min(n - 1, Math.floor(r() * n));
  const next = Array.from({ length: vocab }, () =>
    Int32Array.from({ length: successors }, () => pick(vocab)),
  );
  const out = new Int32Array(batches * batch * (seq + 1));
  for (let row = 0; row < batches * batch; row++) {
    let tok = pick(vocab);
    for (let t = 0; t <= seq; t++) {
      out[row * (seq + 1) + t] = tok;
      tok = next[tok][pick(successors)];
    }
  }
  return out;
}
