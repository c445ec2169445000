// The CNN workloads on the parent's side (issue 13): their config, the data the parent hands
// every child, the checks on each child's result, how rounds merge, the comparison rows, their
// table and their targets. The children are the usual ones (workloads/nabla.mjs, tfjs.mjs and
// torch_bench.py), through workloads/cnn.mjs for the JS libraries.
//
//   cnn-lenet     one training step of a LeNet-style CNN on real MNIST batches: Conv2d(1, 6, 5,
//                 padding 2) → ReLU → MaxPool2d(2) → Conv2d(6, 16, 5) → ReLU → MaxPool2d(2) →
//                 flatten → Linear(400, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10),
//                 cross-entropy, Adam 1e-3, batch 64
//   cnn-resblock  one training step of torchvision's BasicBlock at 64 channels on 32×32 maps
//                 (conv3×3 → BN → ReLU → conv3×3 → BN, + identity, ReLU), batch 16: forward,
//                 MSE against a fixed target, backward and an Adam 1e-3 step
import { checkAdamStepSize, checkLossFalls } from './stepcheck.mjs';
import { uniform } from './random.mjs';
import { ratio } from './rows.mjs';

export const CNN_WORKLOADS = ['cnn-lenet', 'cnn-resblock'];
const TFJS = ['tfjs-cpu', 'tfjs-wasm'];

/** LeNet's layers as [in, out] of its convolutions (kernel 5) and linear layers. */
export const LENET = {
  conv: [
    [1, 6],
    [6, 16],
  ],
  kernel: 5,
  linear: [400, 120, 84, 10],
};

/** The cnn-lenet model for a nabla-style `nn` (nabla's, written as a user does). */
export function lenetModule(nn) {
  const [[c0, c1], [, c2]] = LENET.conv;
  const [f0, f1, f2, f3] = LENET.linear;
  return new nn.Sequential(
    new nn.Conv2d(c0, c1, LENET.kernel, { padding: 2 }),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Conv2d(c1, c2, LENET.kernel),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Flatten(),
    new nn.Linear(f0, f1),
    new nn.ReLU(),
    new nn.Linear(f1, f2),
    new nn.ReLU(),
    new nn.Linear(f2, f3),
  );
}

export function cnnConfig(quick) {
  // tfjs-cpu takes a second or more a step here and tfjs-wasm cannot train: one round each.
  const rounds = { rounds: quick ? 1 : 2, singleRound: TFJS };
  return {
    'cnn-lenet': {
      ...rounds,
      batch: quick ? 8 : 64,
      // Steps cycle over the first `batches` batches of MNIST's training set.
      batches: quick ? 2 : 16,
      lr: 1e-3,
      // Quick: at least 3 × 6 timed steps, so the loss check sees a fall even when a cold
      // process's warm-up step (~10 ms at batch 8) sizes the windows at 2 steps.
      timing: quick
        ? { warmupSteps: 2, windowMs: 30, windows: 3, minWindowSteps: 6 }
        : { warmupSteps: 10, windowMs: 1000, windows: 7 },
      // tfjs-cpu: ~9 s a step at batch 64 here (its Conv2DBackpropFilter alone takes ~1 s per
      // call at batch 16), so windows of two steps, bounded in time.
      slowTiming: {
        'tfjs-cpu': quick
          ? { warmupSteps: 2, windowMs: 0, windows: 2 }
          : { warmupSteps: 2, windowMs: 0, windows: 2, maxMs: 150_000 },
      },
    },
    'cnn-resblock': {
      ...rounds,
      channels: quick ? 8 : 64,
      size: quick ? 8 : 32,
      batch: quick ? 4 : 16,
      // Fixed batches of seeded inputs and targets (uniform in [-1, 1)), written by the parent.
      batches: 4,
      seed: 21,
      lr: 1e-3,
      timing: quick
        ? { warmupSteps: 2, windowMs: 30, windows: 3 }
        : { warmupSteps: 4, windowMs: 1500, windows: 7 },
      // tfjs-cpu's Conv2DBackpropFilter takes ~28 s for one 64-channel 3×3 convolution at
      // batch 2 here, so a step at batch 16 would take ~7 minutes: it runs the first
      // `batch` samples of each batch (its loops cost the same per sample at any batch, so its
      // samples/s is not understated) in windows of two steps, bounded in time.
      slowTiming: {
        'tfjs-cpu': quick
          ? { warmupSteps: 2, windowMs: 0, windows: 2 }
          : { warmupSteps: 1, windowMs: 0, windows: 2, maxMs: 150_000, batch: 1 },
      },
    },
  };
}

/**
 * The resblock's data as one float32 file (every library reads the same numbers): `batches`
 * inputs [batch, channels, size, size] (NCHW, PyTorch's layout), then as many targets.
 */
export function resblockData(c) {
  const per = c.batch * c.channels * c.size * c.size;
  const out = new Float32Array(2 * c.batches * per);
  for (let b = 0; b < 2 * c.batches; b++) out.set(uniform(per, c.seed + b), b * per);
  return out;
}

/** Parameter count of the model each library must report (all of them take Adam's step). */
function parameterCount(workload, c) {
  if (workload === 'cnn-lenet') {
    const k = LENET.kernel * LENET.kernel;
    const conv = LENET.conv.reduce((s, [i, o]) => s + i * o * k + o, 0);
    const L = LENET.linear;
    let lin = 0;
    for (let l = 0; l + 1 < L.length; l++) lin += L[l] * L[l + 1] + L[l + 1];
    return conv + lin;
  }
  // two bias-free 3×3 convolutions and two BatchNorms (weight and bias)
  return 2 * (c.channels * c.channels * 9) + 4 * c.channels;
}

/** The parent's checks (lib/checks.mjs calls this for the CNN workloads). */
export function verifyCnn(library, workload, result, config) {
  const r = result.cnn;
  if (!r) throw new Error(`${library}: no ${workload} result`);
  // A library that cannot train the model reports why, and no figure to check.
  if (r.cannotTrain && !r.stepCheck) return result;
  const c = config[workload];
  const sc = r.stepCheck;
  if (!sc?.p0 || !sc?.p1)
    throw new Error(`${library}: the ${workload} step reported no parameters`);
  const least = parameterCount(workload, c);
  // On MNIST a LeNet step leaves many weights without any gradient (background pixels, units
  // that no image of the batch turns on: 30-45% of them at batch 16 here), and Adam does not
  // move those: at least 30% must move by lr, and nearly all that move at all must move by lr.
  // Every weight of the BasicBlock gets a gradient: 80% of them, as for the RNN.
  const share = workload === 'cnn-lenet' ? 0.3 : 0.8;
  const update = checkAdamStepSize({ library, lr: c.lr, p0: sc.p0, p1: sc.p1, least, share });
  if (update.movedByLr < 0.95 * update.moved) {
    throw new Error(
      `${library}: the timed training step did not apply Adam's first update: only ${update.movedByLr} of the ${update.moved} parameters that moved moved by lr ${c.lr}`,
    );
  }
  // Seconds-a-step libraries take a few steps only at lr 1e-3: a smaller fall, but a fall
  // (tfjs-cpu's LeNet fell 0.49% over its few steps in a quiet run; the first-update check above
  // is what proves each step trains).
  const factor = c.slowTiming[library] ? 0.999 : 0.95;
  const loss = checkLossFalls({ library, losses: sc.losses, cycle: sc.cycle, factor });
  r.stepCheck = { steps: sc.losses.length, ...update, ...loss };
  return result;
}

/** Best round (highest samples/s); each round's figure is kept. */
export function mergeCnnRounds(runs, merged) {
  const parts = runs.map((r) => r.cnn);
  if (parts[0].cannotTrain && !parts[0].samplesPerSec) return { ...merged, cnn: parts[0] };
  const best = parts.reduce((a, b) => (b.samplesPerSec > a.samplesPerSec ? b : a));
  return { ...merged, cnn: { ...best, rounds: parts.map((p) => p.samplesPerSec) } };
}

const MB = 1024 * 1024;

function rowSpecs(config) {
  const l = config['cnn-lenet'];
  const b = config['cnn-resblock'];
  const cannot = (r) => r.cnn?.cannotTrain && !r.cnn?.samplesPerSec;
  const specs = (workload, name) => [
    {
      id: `${workload}:samplesPerSec`,
      label: `${name}: train step, samples/s`,
      better: 'higher',
      pick: (r) => r.cnn?.samplesPerSec,
      contended: (r) => r.cnn?.contended,
    },
    {
      id: `${workload}:peakRss`,
      label: `${name}: peak RSS, MB`,
      better: 'lower',
      pick: (r) => (cannot(r) ? null : r.memory?.peakRss / MB),
    },
    {
      id: `${workload}:wasmHeap`,
      label: `${name}: wasm heap, MB`,
      better: 'lower',
      pick: (r) => (cannot(r) ? null : r.memory?.wasmHeapBytes / MB),
    },
  ];
  return [
    ...specs('cnn-lenet', `LeNet-5, MNIST, batch ${l.batch}`),
    ...specs('cnn-resblock', `BasicBlock ${b.channels} ch, ${b.size}×${b.size}, batch ${b.batch}`),
  ];
}

/** One row per figure, in lib/rows.mjs's shape, plus `cannot[lib]` with the reason. */
export function cnnRows(config, results, libraries) {
  return rowSpecs(config)
    .map(({ id, label, better, pick, contended = () => false }) => {
      const workload = id.split(':')[0];
      const row = {
        id,
        section: 'cnn',
        label,
        unit: id.endsWith('samplesPerSec') ? 'samples/s' : 'MB',
        better,
        values: {},
        notes: {},
        contended: {},
        cannot: {},
        ratios: {},
      };
      let ran = false;
      for (const lib of libraries) {
        const r = results[lib]?.[workload];
        if (r) ran = true;
        const v = r ? pick(r) : null;
        row.values[lib] = typeof v === 'number' && Number.isFinite(v) ? v : null;
        if (r?.cnn?.cannotTrain) row.cannot[lib] = r.cnn.cannotTrain;
        if (r && row.values[lib] !== null && contended(r)) row.contended[lib] = true;
        const slow = config[workload].slowTiming[lib];
        if (r?.cnn?.samplesPerSec && slow && id.endsWith('samplesPerSec')) {
          const cut =
            r.cnn.batch !== config[workload].batch
              ? ` at batch ${r.cnn.batch} (the first ${r.cnn.batch === 1 ? 'sample' : `${r.cnn.batch} samples`} of each batch)`
              : '';
          row.notes[lib] =
            `${workload}: median of ${r.cnn.windows} windows of ${r.cnn.stepsPerWindow} steps (${r.cnn.stepsRun} steps run)${cut}`;
        }
      }
      for (const peer of libraries) {
        if (peer !== 'nabla') row.ratios[peer] = ratio(better, row.values.nabla, row.values[peer]);
      }
      return ran ? row : null;
    })
    .filter(Boolean);
}

/** The CNN table in the report's markdown (empty when neither workload ran). */
export function cnnMarkdown({ rows, libraries, config, num, ratioText, table }) {
  const mine = rows.filter((r) => r.section === 'cnn');
  if (!mine.length) return [];
  const peers = libraries.filter((l) => l !== 'nabla');
  const cell = (row, lib) => {
    const v = row.values[lib];
    const why =
      row.cannot[lib] && row.unit === 'samples/s' ? `cannot train: ${row.cannot[lib]}` : '';
    if (v === null) return why || '—';
    const mark = (row.notes[lib] ? ' †' : '') + (row.contended[lib] ? ' ‡' : '');
    return `${num(v, row.unit)}${mark}${lib === 'nabla' ? '' : ratioText(row.ratios[lib])}`;
  };
  const l = config['cnn-lenet'];
  const b = config['cnn-resblock'];
  const out = ['', '### CNNs', ''];
  out.push(
    table(
      ['metric', 'nabla', ...peers],
      ['l', 'r', ...peers.map(() => 'r')],
      mine.map((r) => [r.label, cell(r, 'nabla'), ...peers.map((p) => cell(r, p))]),
    ),
  );
  const few = [
    ...new Set(mine.flatMap((r) => Object.entries(r.notes).map(([lib, n]) => `${lib}: ${n}`))),
  ];
  if (few.length)
    out.push('', `† a second or more a step, so a few steps only: ${few.join('; ')}.`);
  out.push('');
  out.push(
    `LeNet-5: Conv2d(1, 6, 5, padding 2) → ReLU → MaxPool2d(2) → Conv2d(6, 16, 5) → ReLU → MaxPool2d(2) → flatten → Linear(400, 120) → ReLU → Linear(120, 84) → ReLU → Linear(84, 10), cross-entropy, Adam ${l.lr}, cycling the first ${l.batches} MNIST training batches of ${l.batch}. BasicBlock: torchvision's (conv3×3 → BatchNorm → ReLU → conv3×3 → BatchNorm, + identity, ReLU; batch statistics and running-statistics updates in every library), forward, MSE against a fixed target, backward, Adam ${b.lr}, cycling ${b.batches} batches of seeded inputs and targets that the parent hands every library. PyTorch's initialisation everywhere; samples/s = batch ÷ median step time. The timed step is checked (its first call must move no weight by more than Adam's first step, lr, at least 80% of the block's weights and 30% of LeNet's by lr — on MNIST many of LeNet's weights get no gradient in a batch, and Adam leaves those alone — and 95% of those that move by lr; the loss must fall over the timed steps).`,
  );
  return out;
}

/** Issue 13's speed targets. */
export function cnnTargets(rows) {
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const out = [];
  const NAMES = { 'cnn-lenet': 'LeNet-5 (cnn-lenet)', 'cnn-resblock': 'BasicBlock (cnn-resblock)' };
  for (const [w, peer, goal] of [
    ['cnn-lenet', 'torch', 1],
    ['cnn-resblock', 'torch', 0.6],
    ['cnn-lenet', 'tfjs-cpu', 20],
    ['cnn-resblock', 'tfjs-cpu', 20],
  ]) {
    const row = byId[`${w}:samplesPerSec`];
    const v = row?.ratios[peer] ?? null;
    const name = peer === 'torch' ? 'native PyTorch' : peer;
    out.push({
      target: `${NAMES[w]} train step ≥ ${goal}x ${name} (samples/s)`,
      measured: v === null ? 'n/a' : `${v.toFixed(2)}x`,
      value: v,
      met: v === null ? null : v >= goal,
    });
  }
  return out;
}
