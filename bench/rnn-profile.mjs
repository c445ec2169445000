// Where one training step of the bench's char-RNN workload (Embedding(96, 64) -> LSTM/GRU,
// batch-first -> Linear(hidden, 96), cross-entropy, Adam; batch 32, sequence 64) spends its
// time: every wasm export call is timed, keyed by export (GEMMs also by shape and strides), and
// each key's smallest per-step total over the timed steps is reported, which filters out most of
// a shared machine's interference. What is not inside a wasm call is the JavaScript. Not part of
// the test suite:
//
//   node bench/rnn-profile.mjs [--cell lstm] [--hidden 128] [--steps 30]
//
// Timing wraps the module's exports, so it adds about a microsecond per call (~200 calls/step).
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    cell: { type: 'string', default: 'lstm' },
    hidden: { type: 'string', default: '128' },
    steps: { type: 'string', default: '30' },
  },
});

const keys = new Map(); // key -> { calls, step, min }
let inWasm = 0;
const keyOf = (name, a) =>
  name === 'matmul_f32'
    ? `matmul m${a[3]} k${a[4]} n${a[5]} A[${a[7]},${a[8]}] B[${a[9]},${a[10]}]`
    : name;

// The wrapper goes in before nabla instantiates its module, so every call passes through it.
const instantiate = WebAssembly.instantiate;
WebAssembly.instantiate = async (...a) => {
  const made = await instantiate(...a);
  const instance = made.instance ?? made;
  const exports = {};
  for (const [name, f] of Object.entries(instance.exports)) {
    exports[name] =
      typeof f !== 'function'
        ? f
        : (...xs) => {
            const t0 = performance.now();
            const out = f(...xs);
            const ms = performance.now() - t0;
            const k = keyOf(name, xs);
            const s = keys.get(k) ?? { calls: 0, step: 0, min: Infinity };
            s.calls++;
            s.step += ms;
            keys.set(k, s);
            inWasm += ms;
            return out;
          };
  }
  const wrapped = { exports };
  return made.instance ? { module: made.module, instance: wrapped } : wrapped;
};

const nb = await import('nabla');
await nb.init();
const [vocab, embed, batch, seq] = [96, 64, 32, 64];
const hidden = Number(args.hidden);
nb.manualSeed(0);

class CharModel extends nb.nn.Module {
  constructor() {
    super();
    this.embedding = new nb.nn.Embedding(vocab, embed);
    const Rnn = args.cell === 'lstm' ? nb.nn.LSTM : nb.nn.GRU;
    this.rnn = new Rnn(embed, hidden, { batchFirst: true });
    this.head = new nb.nn.Linear(hidden, vocab);
  }
  forward(x) {
    const [out] = this.rnn.forward(this.embedding.forward(x));
    return this.head.forward(out);
  }
}
const net = new CharModel();
const optimizer = new nb.optim.Adam(net.parameters(), { lr: 1e-3 });
const lossFn = new nb.nn.CrossEntropyLoss();
const tokens = Int32Array.from({ length: batch * (seq + 1) }, (_, i) => (i * 7919) % vocab);
const [x, y] = nb.tidy(() => {
  const rows = nb.tensor(tokens, { shape: [batch, seq + 1], dtype: 'int32' });
  return [rows.narrow(1, 0, seq).contiguous(), rows.narrow(1, 1, seq).contiguous()];
});
nb.keep(x);
nb.keep(y);

function step() {
  nb.tidy(() => {
    const loss = lossFn.forward(net.forward(x).reshape([-1, vocab]), y.reshape([-1]));
    loss.backward();
    return loss.item();
  });
  optimizer.step();
  optimizer.zeroGrad();
}

for (let i = 0; i < 5; i++) step(); // warm-up (and V8's optimising tier)
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
console.log(
  `${args.cell} ${hidden}: best step ${best.toFixed(2)} ms (${Math.round((batch * seq * 1000) / best)} tokens/s); per-step minima:`,
);
for (const [k, s] of rows) {
  if (s.min < 0.005) continue;
  const calls = String(s.calls / steps).padStart(4);
  console.log(`  ${k.padEnd(44)} ${calls} calls ${s.min.toFixed(3).padStart(8)} ms`);
}
console.log(`  ${'all wasm calls'.padEnd(55)} ${total.toFixed(3).padStart(8)} ms`);
console.log(
  `  ${'JavaScript (best step minus its wasm time)'.padEnd(55)} ${bestJs.toFixed(3).padStart(8)} ms`,
);
