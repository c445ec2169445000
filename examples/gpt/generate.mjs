// Sampling from a GPT with a key/value cache: the prompt is read once, then each new token is
// one position through the model (its keys and values are appended to the cache), not the
// whole prefix again. Works with any model whose forward(ids, { pastKeyValues, useCache })
// returns { logits, pastKeyValues }.
import * as nb from 'nabla';

/**
 * Picks the next id from one row of logits ([V] tensor): divide by `temperature` (0: the
 * argmax), keep the `topK` largest (0: all), then the smallest head of those whose probability
 * mass reaches `topP`, and draw from what is left with nabla's generator.
 */
export function sampleNext(logits, { temperature = 1, topK = 0, topP = 1 } = {}) {
  const V = logits.shape[0];
  if (temperature === 0) return logits.argmax().item();
  const k = topK > 0 ? Math.min(topK, V) : V;
  const [values, indices] = logits.div(temperature).topk(k); // sorted, largest first
  const probs = values.softmax(-1).toArray();
  let keep = probs.length;
  if (topP < 1) {
    let mass = 0;
    for (keep = 0; keep < probs.length && mass < topP; keep++) mass += probs[keep];
  }
  const pick = nb.multinomial(nb.tensor(probs.slice(0, keep)), 1).item();
  return indices.toArray()[pick];
}

/**
 * Continues `prompt` (an array of ids) by `maxNewTokens` ids. When the context reaches
 * `nPositions`, the cache is rebuilt from the last half of the context (a sliding window).
 * Stops early at `eot` if given. Returns the prompt followed by the new ids.
 */
export function generate(model, prompt, opts) {
  const { maxNewTokens, nPositions, eot = -1 } = opts;
  const out = [...prompt];
  const wasTraining = model.training;
  model.eval();
  nb.noGrad(() => {
    const prefill = (ids) =>
      model.forward(nb.tensor([ids], { dtype: 'int32' }), { useCache: true });
    let { logits, pastKeyValues } = prefill(out.slice(-nPositions));
    for (let n = 0; n < maxNewTokens; n++) {
      const T = logits.shape[1];
      const next = sampleNext(logits.narrow(1, T - 1, 1).reshape([-1]), opts);
      out.push(next);
      if (next === eot) break;
      const cached = pastKeyValues[0][0].shape[2];
      if (cached + 1 > nPositions)
        ({ logits, pastKeyValues } = prefill(out.slice(-(nPositions >> 1))));
      else
        ({ logits, pastKeyValues } = model.forward(nb.tensor([[next]], { dtype: 'int32' }), {
          pastKeyValues,
          useCache: true,
        }));
    }
  });
  if (wasTraining) model.train();
  return out;
}
