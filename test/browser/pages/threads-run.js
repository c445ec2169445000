// One seeded run whose bits must not depend on the thread count or the engine: GEMMs below and
// above the split size, an MLP trained with Adam (its first layer's GEMMs and Adam update split).
// test/threads.test.ts runs it in Node at 1, 2 and 3 threads (test/helpers/threads-child.mjs);
// test/browser/threads.test.ts in chromium workers at 1 and 2, against Node.

/** FNV-1a over the float32 bit patterns: a short fingerprint of many numbers. */
export function fingerprint(arrays) {
  let h = 0x811c9dc5;
  for (const a of arrays) {
    const bits = new Uint32Array(Float32Array.from(a).buffer);
    for (const v of bits) {
      h = Math.imul(h ^ (v & 0xff), 16777619);
      h = Math.imul(h ^ ((v >>> 8) & 0xff), 16777619);
      h = Math.imul(h ^ ((v >>> 16) & 0xff), 16777619);
      h = Math.imul(h ^ (v >>> 24), 16777619);
    }
  }
  return (h >>> 0).toString(16);
}

export function runThreaded(nb) {
  nb.manualSeed(7);
  const arr = (t) => Array.from(t.toArray());
  const products = {};
  // [name, a shape, b shape, options]: below and above the split size, odd edges, both
  // transposed forms, batched.
  for (const [name, as, bs, opts] of [
    ['tiny', [3, 5], [5, 7], {}],
    ['odd', [67, 130], [130, 45], {}],
    ['square', [256, 256], [256, 256], {}],
    ['transA', [130, 67], [130, 45], { transA: true }],
    ['transB', [67, 130], [45, 130], { transB: true }],
    ['batched', [3, 40, 50], [3, 50, 60], {}],
    ['batchedBig', [2, 128, 64], [2, 64, 96], {}],
  ]) {
    const a = nb.randn(as);
    const b = nb.randn(bs);
    products[name] = { a: arr(a), b: arr(b), c: arr(nb.matmul(a, b, opts)) };
  }
  // Convolutions split by images (forward, input gradient) and output channels (weight and
  // bias gradients): the GEMM path, a depthwise one and a 1×1 (no column scratch).
  const convs = {};
  for (const [name, input, ci, co, k, groups] of [
    ['gemm', [8, 16, 16, 16], 16, 32, 3, 1],
    ['depthwise', [8, 64, 32, 32], 64, 64, 3, 64],
    ['pointwise', [16, 16, 16, 16], 16, 32, 1, 1],
  ]) {
    const conv = new nb.nn.Conv2d(ci, co, k, { padding: k === 3 ? 1 : 0, groups });
    const x = nb.randn(input, { requiresGrad: true });
    const out = conv.forward(x);
    out.square().sum().backward();
    convs[name] = [arr(out), arr(x.grad), arr(conv.weight.grad), arr(conv.bias.grad)];
  }
  const model = new nb.nn.Sequential(
    new nb.nn.Linear(784, 256),
    new nb.nn.ReLU(),
    new nb.nn.Linear(256, 10),
  );
  const opt = new nb.optim.Adam(model.parameters(), { lr: 1e-3 });
  const x = nb.randn([64, 784]);
  const y = nb.randint(0, 10, [64]);
  const losses = [];
  for (let step = 0; step < 8; step++) {
    opt.zeroGrad();
    const loss = nb.nn.functional.crossEntropy(model.forward(x), y);
    loss.backward();
    opt.step();
    losses.push(loss.item());
  }
  const weights = model.parameters().map(arr);
  return {
    info: nb.backendInfo(),
    threads: nb.threads(),
    products,
    productsPrint: fingerprint(Object.values(products).map((p) => p.c)),
    convPrint: fingerprint(Object.values(convs).flat()),
    losses,
    weights,
    weightsPrint: fingerprint(weights),
  };
}
