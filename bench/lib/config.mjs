// What each workload runs, full or --quick. The same object goes to every child (JS and
// Python) as JSON, so all libraries see identical shapes, budgets and data sizes.
import { ATTENTION_WORKLOADS, attentionConfig } from './attention.mjs';
import { CNN_WORKLOADS, cnnConfig } from './cnn.mjs';

// `nabla-relaxed`: the same nabla child on the relaxed-SIMD core (nabla-relaxed.wasm, Node's
// --experimental-wasm-relaxed-simd), a column whose ratio below 1 is that build's gain.
export const LIBRARIES = ['nabla', 'tfjs-wasm', 'tfjs-cpu', 'torch', 'nabla-relaxed'];
/**
 * Columns run only when named in `--only`: `nabla-winograd`, the nabla child with
 * `nb.backends.conv.winograd` on (3×3 convolutions by Winograd; only the CNN rows change).
 */
export const OPTIONAL_LIBRARIES = ['nabla-winograd'];

/**
 * `nb.init` options of a nabla column: `nabla` is pinned to the plain core on one thread, so
 * its column means the same on every Node; `nabla-relaxed` takes the relaxed-SIMD core;
 * `nabla-<n>t` runs on n threads (`--threads n`).
 */
export function nablaInitOptions(library) {
  // (`nabla-winograd` is `nabla` plus a backend flag the child sets after init.)
  const threads = Number(/^nabla-(\d+)t$/.exec(library)?.[1] ?? 1);
  return { simd: library === 'nabla-relaxed' ? 'relaxed' : 'plain', threads };
}
export const WORKLOADS = [
  'matmul',
  'train',
  'epoch',
  'rnn',
  ...ATTENTION_WORKLOADS,
  ...CNN_WORKLOADS,
];

/** `rnn` runs one child per model size (each with its own memory peak): `rnn-<case id>`. */
export function expandWorkloads(config, names) {
  return names.flatMap((w) => (w === 'rnn' ? config.rnn.cases.map((c) => `rnn-${c.id}`) : [w]));
}

/** The config entry a workload's rounds and budgets come from (`rnn-lstm128` → `rnn`). */
export function workloadConfig(config, workload) {
  return config[workload.startsWith('rnn-') ? 'rnn' : workload];
}
export const FORMS = ['AB', 'AtB', 'ABt'];

/** The GEMMs of one MLP training step at batch `batch`, in the layout tfjs and the brief use. */
function mlpCases(layers, batch) {
  const cases = [];
  for (let l = 0; l + 1 < layers.length; l++) {
    const [inF, outF] = [layers[l], layers[l + 1]];
    const tag = `L${l + 1} ${inF}→${outF}`;
    cases.push({ group: 'mlp', tag: `${tag} forward`, form: 'AB', m: batch, k: inF, n: outF });
    cases.push({ group: 'mlp', tag: `${tag} dW`, form: 'AtB', m: inF, k: batch, n: outF });
    cases.push({ group: 'mlp', tag: `${tag} dX`, form: 'ABt', m: batch, k: outF, n: inF });
  }
  return cases;
}

function squareCases(sizes) {
  return sizes.flatMap((s) =>
    FORMS.map((form) => ({ group: 'square', tag: `${s}³`, form, m: s, k: s, n: s })),
  );
}

export function makeConfig({ quick, dataDir }) {
  const layers = [784, 256, 128, 10];
  const batch = 128;
  const squares = quick ? [32, 64] : [64, 128, 256, 512, 1024];
  // Interference from other work only ever slows a child down and cannot all be detected (a
  // busy SMT sibling never deschedules us), so GEMM and train-step figures are the best of
  // `rounds` runs in alternating library order. tfjs-cpu's GEMM runs once: it takes a minute
  // and sits 30-80x below the others either way. Epochs run once (tfjs-wasm's takes 25 s).
  return {
    quick,
    seed: 0,
    dataDir,
    layers,
    batch,
    lr: 1e-3,
    matmul: {
      rounds: quick ? 1 : 2,
      singleRound: ['tfjs-cpu'],
      cases: [...squareCases(squares), ...mlpCases(layers, batch)],
      timing: quick
        ? { warmupMs: 5, sampleMs: 2, samples: 3, minSamples: 2, budgetMs: 20 }
        : { warmupMs: 100, sampleMs: 40, samples: 5, minSamples: 3, budgetMs: 800 },
    },
    // Training steps cycle over the first `batches` batches of the MNIST training set: enough
    // of them that the model does not memorise the pool within the ~1000 timed steps.
    train: quick
      ? { rounds: 2, batches: 2, warmupSteps: 2, windowMs: 30, windows: 3 }
      : { rounds: 2, batches: 32, warmupSteps: 10, windowMs: 500, windows: 7 },
    // tfjs-cpu runs `extrapolateWarmup` uncounted steps, then times `extrapolateSteps` steps
    // of the epoch and extrapolates to the full epoch.
    epoch: quick
      ? { trainSamples: 512, testSamples: 256, extrapolateWarmup: 1, extrapolateSteps: 2 }
      : { trainSamples: 60000, testSamples: 10000, extrapolateWarmup: 3, extrapolateSteps: 40 },
    rnn: rnnConfig(quick),
    ...attentionConfig(quick),
    ...cnnConfig(quick),
  };
}

/**
 * The character-level RNN workload: Embedding(vocab, embed) -> one LSTM or GRU layer ->
 * Linear(hidden, vocab) at every position, cross-entropy against the next token, Adam. Steps
 * cycle over `batches` fixed token batches (lib/tokens.mjs). tfjs trains it with its layers'
 * per-step loops at seconds a step, so it takes a few steps only (`slowTiming`): at least two
 * cycles' worth of losses are not affordable there, and the loss check compares halves.
 */
function rnnConfig(quick) {
  const cases = (sizes) =>
    sizes.map(([cell, hidden]) => ({ id: `${cell}${hidden}`, cell, hidden }));
  const data = { vocab: 96, embed: 64, lr: 1e-3, successors: 3, batches: 4, seed: 11 };
  if (quick) {
    return {
      ...data,
      seq: 12,
      batch: 8,
      cases: cases([
        ['lstm', 32],
        ['lstm', 64],
        ['gru', 64],
      ]),
      timing: { warmupSteps: 2, windowMs: 20, windows: 3 },
      slowTiming: {
        'tfjs-cpu': { warmupSteps: 2, windowMs: 0, windows: 2 },
        'tfjs-wasm': { warmupSteps: 2, windowMs: 0, windows: 2 },
      },
    };
  }
  return {
    ...data,
    seq: 64,
    batch: 32,
    cases: cases([
      ['lstm', 128],
      ['lstm', 256],
      ['gru', 256],
    ]),
    timing: { warmupSteps: 4, windowMs: 1500, windows: 7 },
    // windowMs 0: windows of two steps (timeSteps' minimum). tfjs-cpu takes ~9 s a step at
    // hidden 128 and ~19 s at 256 here, tfjs-wasm ~3 and ~6 s; maxMs bounds the retakes of
    // contended windows so no child nears the 600 s timeout.
    slowTiming: {
      'tfjs-cpu': { warmupSteps: 2, windowMs: 0, windows: 2, maxMs: 150_000 },
      'tfjs-wasm': { warmupSteps: 2, windowMs: 0, windows: 3, maxMs: 120_000 },
    },
  };
}

export function flops({ m, k, n }) {
  return 2 * m * k * n;
}
