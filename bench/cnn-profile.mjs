// Where one training step of the bench's LeNet workload (bench/workloads/nabla.mjs's cnnModel:
// conv-relu-pool ×2 -> three Linear layers, cross-entropy, Adam; batch 64 on 1×28×28), with
// `--model resblock` its BasicBlock (64 channels, 32×32, batch 16, MSE, Adam), or with
// `--model mlp` the MNIST MLP of its train workload (784-256-128-10, batch 128, Adam), spends
// its time: every wasm export call is timed, keyed by export and by its order within the step
// (so `conv2d_f32 #2` is the second conv's forward; GEMMs are keyed by shape and strides), and
// each key's smallest per-step total over the timed steps is reported, which filters out most
// of a shared machine's interference. What is not inside a wasm call is the JavaScript
// (autograd, op glue, allocation). Not part of the test suite:
//
//   npm run build && node bench/cnn-profile.mjs [--steps 40] [--composed] [--threads 2] [--model resblock|mlp]
//
// `--warmup N` instead times a fresh process's first N steps (no warm-up) and prints, per 50
// steps, the median step, its time inside wasm calls and the rest: how long the step takes to
// settle, and on which side of the boundary.
//
// With threads, a split op's time on the calling thread includes its wait for the workers
// (the caller runs its share, steals unclaimed ones, then waits inside the same call).
//
// Timing wraps the module's exports, so it adds about a microsecond per call.
import { parseArgs } from 'node:util';
import { lenetModule } from './lib/cnn.mjs';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '40' },
    composed: { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
    model: { type: 'string', default: 'lenet' }, // lenet | resblock (the bench's BasicBlock) | mlp
    warmup: { type: 'string', default: '0' },
  },
});

const keys = new Map(); // key -> { calls, step, min }
const seen = new Map(); // name -> calls so far in this step
let inWasm = 0;
const keyOf = (name, a) => {
  if (name === 'matmul_f32') {
    return `matmul m${a[3]} k${a[4]} n${a[5]} A[${a[7]},${a[8]}] B[${a[9]},${a[10]}]`;
  }
  const i = (seen.get(name) ?? 0) + 1;
  seen.set(name, i);
  return `${name} #${i}`;
};

const keyless = Number(args.warmup) > 0;
// The wrapper goes in before nabla instantiates its module, so every call passes through it.
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async (...a) => {
  const made = await instantiate(...a);
  const instance = made.instance ?? made;
  const exports = {};
  for (const [name, f] of Object.entries(instance.exports)) {
    exports[name] =
      typeof f !== 'function' || name.startsWith('nb_')
        ? f
        : (...xs) => {
            const t0 = performance.now();
            const out = f(...xs);
            const ms = performance.now() - t0;
            inWasm += ms;
            if (keyless) return out; // --warmup: the total only, with less JS of its own
            const k = keyOf(name, xs);
            const s = keys.get(k) ?? { calls: 0, step: 0, min: Infinity };
            s.calls++;
            s.step += ms;
            keys.set(k, s);
            return out;
          };
  }
  const wrapped = { exports };
  return made.instance ? { module: made.module, instance: wrapped } : wrapped;
};

const nb = await import('nabla');
await nb.init({ threads: Number(args.threads) });
const { nn } = nb;
nb.manualSeed(0);
const resblock = args.model === 'resblock';
const mlp = args.model === 'mlp';
if (!resblock && !mlp && args.model !== 'lenet')
  throw new Error(`--model: lenet, resblock or mlp, got ${args.model}`);
// The bench's workloads (bench/lib/cnn.mjs): LeNet-5 at batch 64, or torchvision's BasicBlock
// at 64 channels on 32×32 maps, batch 16, regressing uniform targets with MSE; or the train
// workload's MLP (bench/lib/config.mjs) at batch 128.
const batch = resblock ? 16 : mlp ? 128 : 64;
const net = resblock
  ? new nn.BasicBlock(64, 64)
  : mlp
    ? new nn.Sequential(
        new nn.Linear(784, 256),
        new nn.ReLU(),
        new nn.Linear(256, 128),
        new nn.ReLU(),
        new nn.Linear(128, 10),
      )
    : lenetModule(nn);
const optimizer = new nb.optim.Adam(net.parameters(), { lr: 1e-3 });
const lossFn = resblock ? new nn.MSELoss() : new nn.CrossEntropyLoss();
const input = resblock
  ? nb.rand([batch, 64, 32, 32]).mul(2).sub(1)
  : nb.rand(mlp ? [batch, 784] : [batch, 1, 28, 28]);
const x = nb.keep(input);
const y = nb.keep(
  resblock ? nb.rand([batch, 64, 32, 32]).mul(2).sub(1) : nb.randint(0, 10, [batch]),
);

function step() {
  seen.clear();
  nb.tidy(() => {
    const loss = lossFn.forward(net.forward(x), y);
    loss.backward();
    return loss.item();
  });
  optimizer.step();
  optimizer.zeroGrad();
}

const run = () => {
  for (let i = 0; i < 10; i++) step(); // warm-up (and V8's optimising tier)
  keys.clear();
  let [best, bestJs] = [Infinity, Infinity];
  const steps = Number(args.steps);
  for (let i = 0; i < steps; i++) {
    const w0 = inWasm;
    const t0 = performance.now();
    step();
    const ms = performance.now() - t0;
    best = Math.min(best, ms);
    bestJs = Math.min(bestJs, ms - (inWasm - w0));
    for (const s of keys.values()) {
      s.min = Math.min(s.min, s.step);
      s.step = 0;
    }
  }
  const rows = [...keys].sort((a, b) => b[1].min - a[1].min);
  const total = rows.reduce((t, [, s]) => t + s.min, 0);
  const mode = args.composed ? 'composed' : 'fused';
  console.log(
    `${args.model} (${mode}) batch ${batch}: best step ${best.toFixed(2)} ms (${Math.round((batch * 1000) / best)} samples/s); per-step minima:`,
  );
  for (const [k, s] of rows) {
    if (s.min < 0.005) continue;
    const calls = String(s.calls / steps).padStart(4);
    console.log(`  ${k.padEnd(48)} ${calls} calls ${s.min.toFixed(3).padStart(8)} ms`);
  }
  console.log(`  ${'all wasm calls'.padEnd(59)} ${total.toFixed(3).padStart(8)} ms`);
  console.log(
    `  ${'JavaScript (best step minus its wasm time)'.padEnd(59)} ${bestJs.toFixed(3).padStart(8)} ms`,
  );
};
/** Medians per 50 steps of a fresh process's first `--warmup` steps: step, wasm, the rest. */
const warmup = () => {
  const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
  const rows = [];
  for (let i = 0; i < Number(args.warmup); i++) {
    const w0 = inWasm;
    const t0 = performance.now();
    step();
    const ms = performance.now() - t0;
    rows.push([ms, inWasm - w0]);
  }
  console.log(`${args.model} batch ${batch}, threads ${args.threads}: medians per 50 steps, ms`);
  for (let b = 0; b < rows.length; b += 50) {
    const r = rows.slice(b, b + 50);
    const [t, w] = [med(r.map((x) => x[0])), med(r.map((x) => x[1]))];
    const rest = med(r.map((x) => x[0] - x[1]));
    const at = `steps ${b}-${b + r.length - 1}`.padEnd(16);
    console.log(`  ${at} step ${t.toFixed(2)}  wasm ${w.toFixed(2)}  rest ${rest.toFixed(2)}`);
  }
};
const main = Number(args.warmup) > 0 ? warmup : run;
if (args.composed) nb.composed(main);
else main();
