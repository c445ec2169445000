// The parent's checks on every child's result, run before any figure is kept: a workload whose
// timed work was not the real work fails the run instead of posting a number.
import { ATTENTION_WORKLOADS, verifyAttention } from './attention.mjs';
import { CNN_WORKLOADS, verifyCnn } from './cnn.mjs';
import { images, labels } from './mnist.mjs';
import { checkAdamStepSize, checkFirstAdamStep, checkLossFalls } from './stepcheck.mjs';

/** Throws when `result` fails its workload's checks; replaces bulky evidence with a summary. */
export function verifyResult(library, workload, result, config) {
  if (ATTENTION_WORKLOADS.includes(workload)) {
    return verifyAttention(library, workload, result, config);
  }
  if (CNN_WORKLOADS.includes(workload)) return verifyCnn(library, workload, result, config);
  if (workload === 'matmul') {
    for (const e of result.matmul ?? []) {
      if (e.verified !== 'last timed product') {
        throw new Error(`${library}: GEMM ${e.m}x${e.k}x${e.n} ${e.form} was not verified`);
      }
    }
  } else if (workload === 'train') {
    const sc = result.train?.stepCheck;
    if (!sc?.p0 || !sc?.p1) throw new Error(`${library}: the training step reported no parameters`);
    const rows = config.batch;
    const update = checkFirstAdamStep({
      library,
      layers: config.layers,
      lr: config.lr,
      p0: sc.p0,
      p1: sc.p1,
      x: images(config.dataDir, 'train', rows),
      y: labels(config.dataDir, 'train', rows),
      rows,
    });
    const loss = checkLossFalls({ library, losses: sc.losses, cycle: sc.cycle });
    result.train.stepCheck = { steps: sc.losses.length, ...update, ...loss };
  } else if (workload.startsWith('rnn-')) {
    const sc = result.rnn?.stepCheck;
    if (!sc?.p0 || !sc?.p1) throw new Error(`${library}: the training step reported no parameters`);
    const r = config.rnn;
    const { cell, hidden } = result.rnn;
    const gates = cell === 'lstm' ? 4 : 3;
    // embedding, input and recurrent weights, one bias, head weight and bias
    const least =
      r.vocab * r.embed + gates * hidden * (r.embed + hidden + 1) + hidden * r.vocab + r.vocab;
    const update = checkAdamStepSize({ library, lr: r.lr, p0: sc.p0, p1: sc.p1, least });
    // Seconds-a-step libraries take a few steps only, at lr 1e-3: a smaller fall, but a fall.
    const loss = checkLossFalls({ library, losses: sc.losses, cycle: sc.cycle, factor: 0.995 });
    result.rnn.stepCheck = { steps: sc.losses.length, ...update, ...loss };
  } else if (workload === 'epoch') {
    const e = result.epoch;
    if (!(e.finalLoss < e.firstLoss)) {
      throw new Error(
        `${library}: the epoch's loss did not fall (first ${e.firstLoss}, last ten ${e.finalLoss})`,
      );
    }
  }
  return result;
}
