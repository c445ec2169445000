// The fused CNN kernels (conv, pooling, batch norm) against the compositions they replace and
// against the GEMM of the same shape, plus two training steps, optionally beside PyTorch on one
// thread (bench/torch_conv.py). Not part of the test suite:
//
//   npm run build && node bench/conv-kernels.mjs [--reps 5] [--torch] [--threads 1]
//
// Conv rows: forward GFLOP/s (2 · N · Co · K · L flops, K = Ci/g · kh · kw taps, L = output
// positions) of the fused kernel, of the composition (unfold + batched matmul) and of the bare
// batched matmul on an already unfolded input (what "the same-shape GEMM" means here), then
// forward + backward times. Step rows: one SGD step (forward, cross-entropy, backward, update)
// in ms and samples/s, best of `reps` after one warm-up.
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import * as nb from 'nabla';
import { lenetModule } from './lib/cnn.mjs';

const { values: args } = parseArgs({
  options: {
    reps: { type: 'string', default: '5' },
    torch: { type: 'boolean', default: false },
    only: { type: 'string', default: 'conv,step' },
    threads: { type: 'string', default: '1' },
  },
});
const REPS = Number(args.reps);
// Every wasm function compiled by the optimising tier up front: V8 first runs wasm from its
// baseline compiler and swaps in optimised code per function once it has run for a while, so a
// short timing of the first rows caught the baseline code (LeNet's 1→6 forward read 6.9
// against 26 GFLOP/s). A training run's steps are long past that point.
setFlagsFromString('--no-liftoff');
await nb.init({ threads: Number(args.threads) });
nb.manualSeed(0);
const { nn, F } = { nn: nb.nn, F: nb.nn.functional };

/** Best wall time of `fn` in ms over REPS runs after one warm-up; each run in its own scope. */
function best(fn, reps = REPS) {
  let t = Infinity;
  for (let r = 0; r <= reps; r++) {
    const t0 = performance.now();
    nb.tidy(() => {
      fn(); // nothing returned, so the scope frees everything
    });
    const ms = performance.now() - t0;
    if (r > 0) t = Math.min(t, ms);
  }
  return t;
}

const CONVS = [
  // name, N, Ci, Co, H, k, pad[, groups]
  ['lenet c1 1→6 5×5 p2 28²', 64, 1, 6, 28, 5, 2],
  ['lenet c2 6→16 5×5 14²', 64, 6, 16, 14, 5, 0],
  ['mnist c1 1→32 3×3 28²', 64, 1, 32, 28, 3, 0],
  ['mnist c2 32→64 3×3 26²', 64, 32, 64, 26, 3, 0],
  ['resnet 64→64 3×3 p1 32²', 8, 64, 64, 32, 3, 1],
  ['depthwise 64 3×3 p1 32²', 8, 64, 64, 32, 3, 1, 64],
];

const gf = (flops, ms) => (flops / ms / 1e6).toFixed(1).padStart(6);
const ms = (v) => v.toFixed(2).padStart(8);

if (args.only.includes('conv')) {
  console.log(
    'conv forward GFLOP/s (fused | composed | same-shape GEMM), fwd+bwd ms (fused | composed)',
  );
  for (const [name, n, ci, co, h, k, p, groups = 1] of CONVS) {
    const x = nb.keep(nb.randn([n, ci, h, h]).requiresGrad_());
    const w = nb.keep(
      nb
        .randn([co, ci / groups, k, k])
        .mul(0.1)
        .requiresGrad_(),
    );
    const b = nb.keep(nb.randn([co]).requiresGrad_());
    const o = h + 2 * p - k + 1;
    const K = (ci / groups) * k * k;
    const L = o * o;
    const flops = 2 * n * co * K * L;
    // The GEMM the composition runs: [g, Co/g, K] · [N, g, K, L].
    const cols = nb.keep(
      nb.noGrad(() => F.unfold(x.detach(), [k, k], { padding: p }).reshape([n, groups, K, L])),
    );
    const w2 = nb.keep(w.detach().reshape([groups, co / groups, K]));
    const fwd = () => F.conv2d(x, w, b, { padding: p, groups });
    const step = () => F.conv2d(x, w, b, { padding: p, groups }).sum().backward();
    const tf = nb.noGrad(() => best(fwd));
    const tc = nb.noGrad(() => nb.composed(() => best(fwd), ['conv']));
    const tg = nb.noGrad(() => best(() => nb.matmul(w2, cols)));
    const bf = best(step);
    const bc = nb.composed(() => best(step), ['conv']);
    for (const t of [x, w, b]) t.grad = null;
    console.log(
      `  ${name.padEnd(26)} N=${String(n).padEnd(3)} ${gf(flops, tf)} | ${gf(flops, tc)} | ${gf(flops, tg)}   fused/GEMM ${(tg / tf).toFixed(2)}   fwd+bwd ${ms(bf)} | ${ms(bc)}`,
    );
    for (const t of [x, w, b, cols, w2]) t.dispose();
  }
}

/** LeNet-5 style on 1×28×28 (padding 2 on the first conv), 10 classes. */
const lenet = () => lenetModule(nn);

/** torchvision's BasicBlock at 64 channels: conv-bn-relu-conv-bn + identity, relu. */
class Block extends nn.Module {
  constructor() {
    super();
    this.conv1 = new nn.Conv2d(64, 64, 3, { padding: 1, bias: false });
    this.bn1 = new nn.BatchNorm2d(64);
    this.conv2 = new nn.Conv2d(64, 64, 3, { padding: 1, bias: false });
    this.bn2 = new nn.BatchNorm2d(64);
  }
  forward(x) {
    const y = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x)).relu()));
    return y.add(x).relu();
  }
}

function stepTime(model, x, loss) {
  const opt = new nb.optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
  return best(() => {
    opt.zeroGrad();
    loss(model.forward(x)).backward();
    opt.step();
  });
}

if (args.only.includes('step')) {
  console.log('training steps (SGD momentum): ms | samples/s, fused vs composed');
  const rows = [];
  {
    const n = 64;
    const model = lenet();
    const x = nb.keep(nb.rand([n, 1, 28, 28]));
    const y = nb.keep(nb.randint(0, 10, [n]));
    const loss = (out) => F.crossEntropy(out, y);
    const f = stepTime(model, x, loss);
    const c = nb.composed(() => stepTime(model, x, loss));
    rows.push(['lenet', n, f, c]);
  }
  {
    const n = 8;
    const model = new Block();
    const x = nb.keep(nb.randn([n, 64, 32, 32]));
    const loss = (out) => out.square().mean();
    const f = stepTime(model, x, loss);
    const c = nb.composed(() => stepTime(model, x, loss));
    rows.push(['resnet-block', n, f, c]);
  }
  let torch = null;
  if (args.torch) {
    const r = spawnSync('/usr/bin/python3', ['bench/torch_conv.py', '--reps', String(REPS)], {
      encoding: 'utf8',
      env: {
        ...process.env,
        OMP_NUM_THREADS: '1',
        OPENBLAS_NUM_THREADS: '1',
        MKL_NUM_THREADS: '1',
      },
    });
    if (r.status === 0) torch = JSON.parse(r.stdout);
    else console.log(`  (torch unavailable: ${r.stderr.trim().split('\n').pop()})`);
  }
  for (const [name, n, f, c] of rows) {
    const sps = (t) => Math.round((n / t) * 1000);
    let line = `  ${name.padEnd(13)} N=${String(n).padEnd(3)} fused ${ms(f)} ms ${String(sps(f)).padStart(6)}/s   composed ${ms(c)} ms ${String(sps(c)).padStart(6)}/s   ${(c / f).toFixed(2)}x`;
    if (torch) {
      const t = torch[name];
      line += `   torch(1 thread) ${ms(t)} ms ${String(sps(t)).padStart(6)}/s   nabla/torch ${(t / f).toFixed(2)}x`;
    }
    console.log(line);
  }
}
