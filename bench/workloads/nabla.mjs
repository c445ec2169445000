// nabla's side of the benchmark (child process entry; see driver.mjs).
//
// GEMM forms: A·B is `nb.matmul`; A·Bᵀ is `nb.nn.functional.linear(a, b)` (x·Wᵀ, whose kernel
// reads W transposed through strides). No public op computes Aᵀ·B without copying the
// transpose (`.mT`/`transpose` materialise it); nabla only reaches it inside backward. So the
// child also instantiates dist/nabla.wasm a second time and calls its `matmul_f32` export
// directly with transposed strides, exactly as the backward of linear/matmul does: that is
// the Aᵀ·B figure, and the "kernel" figure of the other two forms.
import { readFileSync } from 'node:fs';
import * as nb from 'nabla';
import { runChild, storedShapes } from './driver.mjs';

const distUrl = import.meta.resolve('nabla');

/** A second instance of the same wasm core, for direct `matmul_f32` calls. */
async function kernelInstance() {
  const bytes = readFileSync(new URL('./nabla.wasm', distUrl));
  const { instance } = await WebAssembly.instantiate(bytes, {});
  const ex = instance.exports;
  // (a, b, c, m, k, n, a_rs, a_cs, b_rs, b_cs, accumulate, scratch) as in crate/src/abi.rs.
  if (ex.matmul_f32.length !== 12) {
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
    const out = ex.nb_alloc(m * n * 4);
    const [[ars, acs], [brs, bcs]] = strides(c);
    const run = () => ex.matmul_f32(a, b, out, m, k, n, ars, acs, brs, bcs, 0, scratch);
    return {
      run,
      output() {
        run();
        return new Float32Array(ex.memory.buffer, out, m * n).slice();
      },
      via: 'wasm export matmul_f32 (strided operands)',
      dispose() {
        ex.nb_free(a, aData.length * 4);
        ex.nb_free(b, bData.length * 4);
        ex.nb_free(out, m * n * 4);
      },
    };
  };
}

function matmul(c, aData, bData) {
  if (c.form === 'AtB') return null;
  const [sa, sb] = storedShapes(c);
  const a = nb.tensor(aData, { shape: sa });
  const b = nb.tensor(bData, { shape: sb });
  const ab = c.form === 'AB';
  const product = ab ? () => nb.matmul(a, b) : () => nb.nn.functional.linear(a, b);
  return {
    run: () => product().dispose(),
    output: () => nb.tidy(() => product().toArray()),
    via: ab ? 'nb.matmul' : 'nb.nn.functional.linear (x·Wᵀ)',
    dispose() {
      a.dispose();
      b.dispose();
    },
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

await runChild(async (_library, _config, workload) => {
  await nb.init();
  const pkg = JSON.parse(readFileSync(new URL('../package.json', distUrl), 'utf8'));
  const kern = workload === 'matmul' ? await kernelInstance() : null;
  return {
    version: pkg.version,
    matmul,
    kernelMatmul: kern ? makeKernelMatmul(kern) : null,
    dataset,
    batch,
    free: (bt) => bt.forEach((t) => t.dispose()),
    model,
    step,
    accuracy,
    extrapolateEpoch: false,
    memory() {
      const m = nb.memory();
      return { wasmHeapBytes: m.heapBytes, tensorBytes: m.bytes, tensors: m.tensors };
    },
  };
});
