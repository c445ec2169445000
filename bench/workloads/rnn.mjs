// The character-level RNN training workload for the JS libraries (see lib/config.mjs's
// rnnConfig): the driver's train-step rules (timed closure checked on its first call, every
// loss kept) on token batches instead of MNIST. The library supplies `rnnBatch`, `rnnModel`,
// `rnnStep` and `rnnParameters`.
import { readFileSync } from 'node:fs';
import { encodeF32 } from '../lib/stepcheck.mjs';
import { timeCheckedSteps } from '../lib/timing.mjs';

/** The parent's token batches (lib/tokens.mjs), `batches` × `batch` rows of `seq + 1`. */
export function readTokens(r) {
  const b = readFileSync(r.tokenFile);
  const tokens = new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const want = r.batches * r.batch * (r.seq + 1);
  if (tokens.length !== want) {
    throw new Error(`${r.tokenFile}: ${tokens.length} tokens, expected ${want}`);
  }
  return tokens;
}

export function rnn(lib, config, mem, library, caseId) {
  const r = config.rnn;
  const c = r.cases.find((k) => k.id === caseId);
  if (!c) throw new Error(`rnn: no case ${caseId} in the config`);
  const tokens = readTokens(r);
  const per = r.batch * (r.seq + 1);
  const batches = [];
  for (let b = 0; b < r.batches; b++) {
    batches.push(lib.rnnBatch(tokens.subarray(b * per, (b + 1) * per), r));
  }
  const model = lib.rnnModel(r, c, config.seed);
  mem.sample();
  const run = timeCheckedSteps({
    batches,
    step: (bt) => lib.rnnStep(model, bt),
    snapshot: () => lib.rnnParameters(model).map(encodeF32),
    timing: r.slowTiming[library] ?? r.timing,
    onWindow: mem.sample,
  });
  const tokensPerStep = r.batch * r.seq;
  return {
    rnn: {
      ...c,
      batch: r.batch,
      seq: r.seq,
      tokensPerStep,
      ...run.timing,
      tokensPerSec: (tokensPerStep * 1000) / run.ms,
      stepsRun: run.stepsRun,
      finalLoss: run.finalLoss,
      // A library that cannot train the model as written reports why, and what it ran instead.
      cannotTrain: model.cannotTrain ?? null,
      variant: model.variant ?? null,
      stepCheck: run.stepCheck,
    },
  };
}
