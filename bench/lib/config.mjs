// What each workload runs, full or --quick. The same object goes to every child (JS and
// Python) as JSON, so all libraries see identical shapes, budgets and data sizes.
import { ATTENTION_WORKLOADS, attentionConfig } from './attention.mjs';

export const LIBRARIES = ['nabla', 'tfjs-wasm', 'tfjs-cpu', 'torch'];
export const WORKLOADS = ['matmul', 'train', 'epoch', ...ATTENTION_WORKLOADS];
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
    ...attentionConfig(quick),
  };
}

export function flops({ m, k, n }) {
  return 2 * m * k * n;
}
