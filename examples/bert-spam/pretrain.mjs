// Masked-language-model pretraining of a small BertForMaskedLM on packed chunks: HF's dynamic
// masking (nb.nn.bert.maskTokens, a new draw every step), AdamW without decay on biases and
// LayerNorms, linear warmup then cosine decay, gradient clipping and accumulation, a fixed
// masked validation set, early stopping, and the best weights saved with HF names.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as nb from 'nabla';
import { rng, shuffled } from './data.mjs';

/**
 * The MLM loss over the chosen positions only: the head runs on the masked rows instead of all
 * B · T, which is the same mean cross-entropy as HF's (labels -100 elsewhere) at a fraction of
 * the vocabulary projection's cost.
 */
export function maskedLoss(model, inputIds, labels) {
  const V = model.config.vocabSize;
  const lab = labels.toArray();
  const rows = [];
  const targets = [];
  lab.forEach((v, i) => {
    if (v !== -100) {
      rows.push(i);
      targets.push(v);
    }
  });
  if (rows.length === 0) return null;
  const h = model.bert.forward(inputIds).lastHiddenState;
  const [B, T, H] = h.shape;
  const picked = h.reshape([B * T, H]).indexSelect(0, nb.tensor(rows, { dtype: 'int32' }));
  const logits = model.cls.forward(picked);
  return nb.nn.functional.crossEntropy(
    logits.reshape([rows.length, V]),
    nb.tensor(targets, { dtype: 'int32' }),
  );
}

/**
 * Pretrains `model` (a BertForMaskedLM) on `train` / `val` ({ ids, n } of T-token chunks).
 * Writes `best.safetensors` + `config.json` into `out`, loads the best weights back into the
 * model, and returns the history.
 */
export function pretrain(model, tok, { train, val }, opts, progress) {
  const { T, batch: B, accum, steps, lr, warmup, clip, evalEvery, patience, seed, out } = opts;
  const V = model.config.vocabSize;
  const maskOpts = { maskTokenId: tok.maskId, vocabSize: V, specialIds: tok.specialIds };
  const rows = (src, idxs) => {
    const a = new Int32Array(idxs.length * T);
    idxs.forEach((c, r) => a.set(src.ids.subarray(c * T, (c + 1) * T), r * T));
    return nb.tensor(a, { shape: [idxs.length, T], dtype: 'int32' });
  };
  // A fixed masking of the validation chunks (seeded), so every evaluation sees the same task.
  const valBatches = [];
  for (let i = 0; i < val.n; i += B) {
    const idxs = Array.from({ length: Math.min(B, val.n - i) }, (_, j) => i + j);
    const m = nb.nn.bert.maskTokens(rows(val, idxs), { ...maskOpts, seed: seed * 7919 + i });
    valBatches.push([nb.keep(m.inputIds), nb.keep(m.labels)]);
  }
  const validate = () => {
    model.eval();
    let sum = 0;
    let count = 0;
    nb.noGrad(() => {
      for (const [x, y] of valBatches) {
        const k = Array.from(y.toArray()).filter((v) => v !== -100).length;
        const loss = nb.tidy(() => maskedLoss(model, x, y)?.item() ?? 0);
        sum += loss * k;
        count += k;
      }
    });
    model.train();
    return sum / count;
  };

  const params = model.parameters();
  const optimizer = new nb.optim.AdamW(
    nb.optim.paramGroupsWithDecay(model, { weightDecay: 0.01 }),
    {
      lr,
      betas: [0.9, 0.98],
      eps: 1e-6,
    },
  );
  const scheduler = new nb.optim.LambdaLR(optimizer, (s) =>
    s < warmup
      ? (s + 1) / warmup
      : 0.5 * (1 + Math.cos(Math.PI * Math.min(1, (s - warmup) / Math.max(1, steps - warmup)))),
  );
  const rand = rng(seed + 17);
  let order = [];
  const nextChunk = () => {
    if (order.length === 0) order = shuffled(train.n, rand); // a new epoch over the chunks
    return order.pop();
  };

  const history = [];
  let best = { loss: Infinity, step: 0 };
  let bad = 0;
  const t0 = performance.now();
  const initial = validate();
  history.push({ step: 0, valLoss: initial });
  progress.line(
    `MLM validation loss before training ${initial.toFixed(3)} (ln V = ${Math.log(V).toFixed(3)})`,
  );
  let step = 0;
  nb.resetPeakMemory();
  for (; step < steps; step++) {
    optimizer.zeroGrad();
    let stepLoss = 0;
    for (let m = 0; m < accum; m++) {
      const idxs = Array.from({ length: B }, () => nextChunk());
      stepLoss += nb.tidy(() => {
        const masked = nb.nn.bert.maskTokens(rows(train, idxs), maskOpts);
        const loss = maskedLoss(model, masked.inputIds, masked.labels);
        if (!loss) return 0;
        loss.div(accum).backward();
        return loss.item() / accum;
      });
    }
    nb.nn.utils.clipGradNorm(params, clip);
    optimizer.step();
    scheduler.step();
    progress.tick(step + 1, steps, `mlm loss ${stepLoss.toFixed(3)}`);
    if ((step + 1) % evalEvery === 0 || step + 1 === steps) {
      const valLoss = validate();
      history.push({ step: step + 1, trainLoss: stepLoss, valLoss });
      progress.line(
        `pretrain step ${step + 1}: train ${stepLoss.toFixed(3)}, validation ${valLoss.toFixed(3)}, ` +
          `lr ${optimizer.paramGroups[0].lr.toExponential(2)}, ${((performance.now() - t0) / 1000).toFixed(0)} s`,
      );
      if (valLoss < best.loss) {
        best = { loss: valLoss, step: step + 1 };
        bad = 0;
        save(model, out);
      } else if (++bad >= patience) {
        progress.line(`early stopping: no improvement for ${bad} validations`);
        step++;
        break;
      }
    }
  }
  valBatches.flat().forEach((t) => t.dispose());
  model.loadHuggingFace(nb.io.loadSafetensors(readBest(out)));
  return {
    steps: step,
    seconds: (performance.now() - t0) / 1000,
    initialValLoss: initial,
    bestValLoss: best.loss,
    bestStep: best.step,
    history,
    peakTensorBytes: nb.memory().peakBytes,
  };
}

let bestBytes = null;
function save(model, out) {
  bestBytes = nb.io.saveSafetensors(model.stateDict(), { format: 'pt' });
  writeFileSync(join(out, 'model.safetensors'), bestBytes);
  writeFileSync(
    join(out, 'config.json'),
    JSON.stringify({ architectures: ['BertForMaskedLM'], ...model.config.toJSON() }, null, 2),
  );
}

function readBest() {
  return bestBytes;
}
