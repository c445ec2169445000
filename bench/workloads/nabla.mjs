// nabla's side of the benchmark (child process entry; see driver.mjs).
//
// GEMM forms go through the public op, as the peers' figures do: `nb.matmul(a, b, { transA,
// transB })` reads a transposed operand through strides. The child also instantiates
// dist/nabla.wasm a second time and calls its `matmul_f32` export directly: the "kernel"
// column, whose gap to the op is the op layer's per-call cost.
//
// `config.plant` (tests only) swaps in a broken workload that the harness must reject.
import { readFileSync } from 'node:fs';
import * as nb from 'nabla';
import { runChild, storedShapes } from './driver.mjs';
import { nablaInitOptions } from '../lib/config.mjs';
import { lenetModule } from '../lib/cnn.mjs';

const distUrl = import.meta.resolve('nabla');

/** A second instance of the same wasm core, for direct `matmul_f32` calls. */
async function kernelInstance(file) {
  const bytes = readFileSync(new URL(`./${file}`, distUrl));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const ex = instance.exports;
  // (a, b, c, m, k, n, ldc, a_rs, a_cs, b_rs, b_cs, accumulate, scratch) as in crate/src/abi.rs.
  if (ex.matmul_f32.length !== 13) {
    throw new Error(
      `matmul_f32 takes ${ex.matmul_f32.length} arguments now; update ${import.meta.url}`,
    );
  }
  const scratch = ex.nb_alloc(ex.matmul_scratch_len() * 4);
  return { ex, scratch };
}

/** Element strides [row, col] of op(A) and op(B) for each form, from their stored layouts. */
function strides({ form, m, k, n }) {
  const a = form === 'AtB' ? [1, m] : [k, 1];
  const b = form === 'ABt' ? [1, k] : [n, 1];
  return [a, b];
}

function makeKernelMatmul(kern) {
  return (c, aData, bData) => {
    const { ex, scratch } = kern;
    const { m, k, n } = c;
    const put = (data) => {
      const ptr = ex.nb_alloc(data.length * 4);
      new Float32Array(ex.memory.buffer, ptr, data.length).set(data);
      return ptr;
    };
    const a = put(aData);
    const b = put(bData);
    const out = put(new Float32Array(m * n).fill(NaN)); // a call that writes nothing stays NaN
    const [[ars, acs], [brs, bcs]] = strides(c);
    return {
      run: () => {
        ex.matmul_f32(a, b, out, m, k, n, n, ars, acs, brs, bcs, 0, scratch);
        return out;
      },
      read: () => new Float32Array(ex.memory.buffer, out, m * n).slice(),
      free() {},
      via: 'wasm export matmul_f32 (strided operands)',
      dispose() {
        ex.nb_free(a, aData.length * 4);
        ex.nb_free(b, bData.length * 4);
        ex.nb_free(out, m * n * 4);
      },
    };
  };
}

function makeMatmul(plant) {
  return (c, aData, bData) => {
    const [sa, sb] = storedShapes(c);
    const a = nb.tensor(aData, { shape: sa });
    const b = nb.tensor(bData, { shape: sb });
    const opts = { transA: c.form === 'AtB', transB: c.form === 'ABt' };
    // The planted no-op hands back one tensor made before timing and computes nothing.
    const idle = plant === 'noop-matmul' ? nb.keep(nb.zeros([c.m, c.n])) : null;
    return {
      run: idle ? () => idle : () => nb.matmul(a, b, opts),
      read: (h) => h.toArray(),
      free: (h) => h.dispose(),
      via: `nb.matmul(a, b, { transA: ${opts.transA}, transB: ${opts.transB} })`,
      dispose() {
        a.dispose();
        b.dispose();
      },
    };
  };
}

function dataset(x, y, count) {
  return {
    x: nb.tensor(x, { shape: [count, 784] }),
    y: nb.tensor(y, { shape: [count] }),
    labels: y,
    count,
  };
}

function batch(ds, idx) {
  return nb.tidy(() => {
    const i = nb.tensor(Int32Array.from(idx));
    return [nb.indexSelect(ds.x, 0, i), nb.indexSelect(ds.y, 0, i)];
  });
}

function model(config) {
  nb.manualSeed(config.seed);
  const mods = [];
  const L = config.layers;
  for (let l = 0; l + 1 < L.length; l++) {
    mods.push(new nb.nn.Linear(L[l], L[l + 1]));
    if (l + 2 < L.length) mods.push(new nb.nn.ReLU());
  }
  const net = new nb.nn.Sequential(...mods);
  return {
    net,
    optimizer: new nb.optim.Adam(net.parameters(), { lr: config.lr }),
    lossFn: new nb.nn.CrossEntropyLoss(),
  };
}

/** One training step, the way nb.train.fit runs it: the graph in a scope, then the update. */
function step({ net, optimizer, lossFn }, [x, y]) {
  const loss = nb.tidy(() => {
    const l = lossFn.forward(net.forward(x), y);
    l.backward();
    return l.item();
  });
  optimizer.step();
  optimizer.zeroGrad();
  return loss;
}

/** Broken steps the harness must reject (tests only). */
const PLANTED_STEPS = {
  // does nothing and reports a plausible loss
  'noop-step': () => 2.3,
  // forward and update without backward: no gradients, so the parameters never move
  'no-backward': ({ net, optimizer, lossFn }, [x, y]) => {
    const loss = nb.tidy(() => lossFn.forward(net.forward(x), y).item());
    optimizer.step();
    optimizer.zeroGrad();
    return loss;
  },
  // a real step with the wrong optimizer: the parameters move, but not by Adam's update
  'sgd-step': (m, batch) => {
    m.sgd ??= new nb.optim.SGD(m.net.parameters(), { lr: 0.1 });
    return step({ ...m, optimizer: m.sgd }, batch);
  },
};

/** Inputs (the first `seq` tokens of each row) and targets (the last `seq`), as int32. */
function rnnBatch(tokens, { batch, seq }) {
  return nb.tidy(() => {
    const rows = nb.tensor(tokens, { shape: [batch, seq + 1], dtype: 'int32' });
    return [rows.narrow(1, 0, seq).contiguous(), rows.narrow(1, 1, seq).contiguous()];
  });
}

/** Embedding -> one LSTM or GRU layer -> Linear over every position, as a user writes it. */
class CharModel extends nb.nn.Module {
  constructor({ vocab, embed }, { cell, hidden }) {
    super();
    this.embedding = new nb.nn.Embedding(vocab, embed);
    const Rnn = cell === 'lstm' ? nb.nn.LSTM : nb.nn.GRU;
    this.rnn = new Rnn(embed, hidden, { batchFirst: true });
    this.head = new nb.nn.Linear(hidden, vocab);
  }

  /** x [batch, seq] int32 → logits [batch, seq, vocab] */
  forward(x) {
    const [out] = this.rnn.forward(this.embedding.forward(x));
    return this.head.forward(out);
  }
}

function rnnModel(r, c, seed) {
  nb.manualSeed(seed);
  const net = new CharModel(r, c);
  return {
    net,
    vocab: r.vocab,
    optimizer: new nb.optim.Adam(net.parameters(), { lr: r.lr }),
    lossFn: new nb.nn.CrossEntropyLoss(),
  };
}

/** One step: cross-entropy of every position's logits against the next token, then Adam. */
function rnnStep({ net, vocab, optimizer, lossFn }, [x, y]) {
  const loss = nb.tidy(() => {
    const l = lossFn.forward(net.forward(x).reshape([-1, vocab]), y.reshape([-1]));
    l.backward();
    return l.item();
  });
  optimizer.step();
  optimizer.zeroGrad();
  return loss;
}

/** Broken RNN steps the harness must reject (tests only), as PLANTED_STEPS for the MLP. */
const PLANTED_RNN_STEPS = {
  'noop-step': () => 4.5,
  'no-backward': ({ net, vocab, optimizer, lossFn }, [x, y]) => {
    const loss = nb.tidy(() =>
      lossFn.forward(net.forward(x).reshape([-1, vocab]), y.reshape([-1])).item(),
    );
    optimizer.step();
    optimizer.zeroGrad();
    return loss;
  },
  'sgd-step': (m, batch) => {
    m.sgd ??= new nb.optim.SGD(m.net.parameters(), { lr: 0.1 });
    return rnnStep({ ...m, optimizer: m.sgd }, batch);
  },
};

/** One CNN batch as nabla tensors: NCHW images and int32 labels, or NCHW targets. */
function cnnBatch(workload, { x, y }, c) {
  if (workload === 'cnn-resblock') {
    const shape = [c.batch, c.channels, c.size, c.size];
    return [nb.tensor(x, { shape }), nb.tensor(y, { shape })];
  }
  return [nb.tensor(x, { shape: [c.batch, 1, 28, 28] }), nb.tensor(y, { dtype: 'int32' })];
}

/** LeNet-5 (lib/cnn.mjs) or torchvision's BasicBlock, written as a user does, with Adam. */
function cnnModel(workload, c, seed) {
  nb.manualSeed(seed);
  const { nn } = nb;
  const net =
    workload === 'cnn-resblock' ? new nn.BasicBlock(c.channels, c.channels) : lenetModule(nn);
  net.train();
  return {
    net,
    lossFn: workload === 'cnn-resblock' ? new nn.MSELoss() : new nn.CrossEntropyLoss(),
    optimizer: new nb.optim.Adam(net.parameters(), { lr: c.lr }),
  };
}

/** Broken CNN steps the harness must reject (tests only), as PLANTED_STEPS for the MLP. */
const PLANTED_CNN_STEPS = {
  'noop-step': () => 2.3,
  'no-backward': ({ net, optimizer, lossFn }, [x, y]) => {
    const loss = nb.tidy(() => lossFn.forward(net.forward(x), y).item());
    optimizer.step();
    optimizer.zeroGrad();
    return loss;
  },
  'sgd-step': (m, batch) => {
    m.sgd ??= new nb.optim.SGD(m.net.parameters(), { lr: 0.1 });
    return step({ ...m, optimizer: m.sgd }, batch);
  },
};

/** Parameters in PyTorch's layout and order (Linear weight [out, in], then bias). */
function parameters({ net }) {
  return net.parameters().map((p) => Float32Array.from(p.toArray()));
}

function accuracy({ net }, ds) {
  let correct = 0;
  for (let s = 0; s < ds.count; s += 1000) {
    const len = Math.min(1000, ds.count - s);
    const pred = nb.tidy(() =>
      nb.noGrad(() =>
        net
          .forward(ds.x.narrow(0, s, len))
          .argmax(1)
          .toArray(),
      ),
    );
    for (let i = 0; i < len; i++) if (pred[i] === ds.labels[s + i]) correct++;
  }
  return correct / ds.count;
}

await runChild(async (library, config, workload) => {
  const plant = config.plant ?? null;
  const options = nablaInitOptions(library);
  await nb.init(options);
  nb.backends.conv.winograd = library === 'nabla-winograd';
  const pkg = JSON.parse(readFileSync(new URL('../package.json', distUrl), 'utf8'));
  const core = nb.backendInfo().source.split('/').pop();
  // The kernel column calls one instance's export directly: not for the shared-memory core.
  const kern = workload === 'matmul' && options.threads === 1 ? await kernelInstance(core) : null;
  return {
    version: pkg.version,
    info: { core: nb.backendInfo() },
    matmul: makeMatmul(plant),
    kernelMatmul: kern && !plant ? makeKernelMatmul(kern) : null,
    dataset,
    batch,
    free: (bt) => bt.forEach((t) => t.dispose()),
    model,
    step: PLANTED_STEPS[plant] ?? step,
    parameters,
    accuracy,
    rnnBatch,
    rnnModel,
    rnnStep: PLANTED_RNN_STEPS[plant] ?? rnnStep,
    rnnParameters: parameters,
    cnnBatch,
    cnnModel,
    // the MLP's step: forward, loss, backward in a tidy, then Adam
    cnnStep: PLANTED_CNN_STEPS[plant] ?? step,
    cnnParameters: parameters,
    extrapolateEpoch: false,
    memory() {
      const m = nb.memory();
      return { wasmHeapBytes: m.heapBytes, tensorBytes: m.bytes, tensors: m.tensors };
    },
  };
});
