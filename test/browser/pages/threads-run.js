// One seeded run whose bits must not depend on the thread count or the engine: GEMMs below and
// above the split size, convolutions, recurrent layers, attention, elementwise ops, reductions,
// layer norm, optimizers, an MLP trained with Adam (its first layer's GEMMs and Adam update split).
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
  // transposed forms, batched; 'wide' products (more columns than rows) split by columns,
  // with edge tiles in both directions (22 rows, 603 and 517 columns).
  for (const [name, as, bs, opts] of [
    ['tiny', [3, 5], [5, 7], {}],
    ['odd', [67, 130], [130, 45], {}],
    ['square', [256, 256], [256, 256], {}],
    ['wide', [36, 300], [300, 517], {}],
    ['wideTransB', [22, 200], [603, 200], { transB: true }],
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
  for (const [name, input, ci, co, k, groups, winograd = false] of [
    ['gemm', [8, 16, 16, 16], 16, 32, 3, 1],
    ['depthwise', [8, 64, 32, 32], 64, 64, 3, 64],
    ['pointwise', [16, 16, 16, 16], 16, 32, 1, 1],
    ['winograd', [8, 16, 16, 16], 16, 32, 3, 1, true],
  ]) {
    const conv = new nb.nn.Conv2d(ci, co, k, { padding: k === 3 ? 1 : 0, groups });
    const x = nb.randn(input, { requiresGrad: true });
    nb.backends.conv.winograd = winograd;
    try {
      const out = conv.forward(x);
      out.square().sum().backward();
      convs[name] = [arr(out), arr(x.grad), arr(conv.weight.grad), arr(conv.bias.grad)];
    } finally {
      nb.backends.conv.winograd = false;
    }
  }
  // Recurrent layers split each step's cell by batch rows (18 rows: uneven 4-row cuts at 2 and
  // 3 threads; hidden 176 puts every cell above the split size): stacked bidirectional LSTM, a
  // packed GRU batch whose rows stop early, an Elman RNN, and the single-step cells.
  const recurrent = {};
  const seq = (m) => {
    const x = nb.randn([5, 18, 24], { requiresGrad: true });
    return [x, m.forward(x)[0]];
  };
  const packed = (m) => {
    const x = nb.randn([5, 18, 24], { requiresGrad: true });
    const lengths = Array.from({ length: 18 }, (_, i) => 5 - Math.floor(i / 4));
    const out = m.forward(nb.nn.utils.rnn.packPaddedSequence(x, lengths))[0];
    return [x, nb.nn.utils.rnn.padPackedSequence(out)[0]];
  };
  const step = (m) => {
    const x = nb.randn([18, 24], { requiresGrad: true });
    const h = m.forward(x);
    return [x, Array.isArray(h) ? nb.cat(h, 1) : h];
  };
  for (const [name, m, run] of [
    ['lstm', new nb.nn.LSTM(24, 176, { numLayers: 2, bidirectional: true }), seq],
    ['gru', new nb.nn.GRU(24, 176), packed],
    ['rnn', new nb.nn.RNN(24, 176, { nonlinearity: 'relu' }), seq],
    ['lstmCell', new nb.nn.LSTMCell(24, 176), step],
    ['gruCell', new nb.nn.GRUCell(24, 176), step],
    ['rnnCell', new nb.nn.RNNCell(24, 176), step],
  ]) {
    const [x, out] = run(m);
    out.square().sum().backward();
    recurrent[name] = [arr(out), arr(x.grad), ...m.parameters().map((p) => arr(p.grad))];
  }
  // A small CNN: the weight gradient's image chunks (direct 1-channel and GEMM convs), max and
  // average pooling, batch norm, ReLU/GELU and softmax, each split above SPLIT_MIN_ELEMENTS.
  const cnn = new nb.nn.Sequential(
    new nb.nn.Conv2d(1, 6, 5),
    new nb.nn.ReLU(),
    new nb.nn.MaxPool2d(2),
    new nb.nn.Conv2d(6, 16, 5, { padding: 2 }),
    new nb.nn.BatchNorm2d(16),
    new nb.nn.GELU(),
    new nb.nn.AvgPool2d(2),
    new nb.nn.Flatten(),
    new nb.nn.Softmax(1),
  );
  const images = nb.randn([66, 1, 28, 28], { requiresGrad: true });
  const probs = cnn.forward(images);
  probs.square().sum().backward();
  const cnnPrint = fingerprint([
    arr(probs),
    arr(images.grad),
    ...cnn.parameters().map((p) => arr(p.grad)),
    ...cnn
      .namedBuffers()
      .filter(([, b]) => b.dtype === 'float32')
      .map(([, b]) => arr(b)),
  ]);
  // Fused attention, split by (batch·head, query block) forward and batch·head backward:
  // causal, with a boolean mask broadcast over heads, and a cross-attention shape.
  const attention = [];
  for (const [qs, ks, opts] of [
    [[3, 4, 70, 24], [3, 4, 70, 24], { isCausal: true }],
    [[2, 4, 66, 32], [2, 4, 50, 32], { attnMask: nb.randn([2, 1, 66, 50]).gt(-0.5) }],
  ]) {
    const [q, k, v] = [qs, ks, ks].map((s) => nb.randn(s, { requiresGrad: true }));
    const o = nb.nn.functional.scaledDotProductAttention(q, k, v, opts);
    o.square().sum().backward();
    attention.push(arr(o), arr(q.grad), arr(k.grad), arr(v.grad));
  }
  // Flat elementwise binaries (odd length: the split leaves the scalar tail alone), reductions
  // by [r, inner] blocks, layer norm (rows; the backward's fixed row chunks) and the SGD,
  // RMSprop and Adagrad updates (elements), each above SPLIT_MIN_ELEMENTS.
  const ops = [];
  const [p, q] = [nb.randn([70_003]), nb.randn([70_003]).abs().add(0.5)];
  ops.push(...[p.add(q), p.mul(q), p.div(q), q.pow(p), p.maximum(q)].map(arr));
  const grid = nb.randn([600, 301]);
  ops.push(arr(grid.sum(1)), arr(grid.max(-1)), arr(grid.logsumexp(1)), arr(grid.mean([0, 1])));
  // Broadcasting: a row, a column, a 0-d operand (one flat run, odd length), a middle dim;
  // rows of odd length (301) cut at multiples of 4 rows, powers with a SIMD body and a tail.
  const [row, col] = [nb.randn([301]), nb.randn([600, 1]).abs().add(0.5)];
  ops.push(arr(grid.add(row)), arr(grid.div(col)), arr(col.pow(grid)), arr(grid.maximum(row)));
  ops.push(arr(p.mul(nb.tensor(-0.75))), arr(nb.tensor(2).sub(p)));
  const cube = nb.randn([5, 300, 70]);
  ops.push(arr(cube.mul(nb.randn([5, 1, 70]))), arr(cube.sub(nb.randn([300, 1]))));
  ops.push(arr(nb.randn([5, 300, 70]).sum(1)));
  // Few blocks, many columns: split by columns (odd widths leave a scalar tail).
  const tall = nb.randn([700, 301]);
  ops.push(arr(tall.sum(0)), arr(tall.max(0)), arr(tall.logsumexp(0)), arr(tall.min(0)));
  ops.push(arr(nb.randn([2, 300, 130]).sum(1)));
  // Whole-tensor sums (subtrees of the pairwise sum) above and below their split size; whole
  // max, min and logsumexp (split from 2^16, 2^16 and 2^15) with a repeated extreme and signed
  // zeros, then with a NaN in the last part and an infinity in a middle one.
  for (const n of [300_001, 1_048_576, 70_003, 40_001, 20_000]) {
    const v = nb.randn([n]);
    ops.push(arr(v.sum()), arr(v.mean()), arr(nb.nn.functional.mseLoss(v, v.flip(0))));
    const a = v.toArray();
    [a[5], a[n - 2], a[3], a[n - 9]] = [6.5, 6.5, -0, 0];
    const w = nb.tensor(a);
    ops.push(arr(w.max()), arr(w.min()), arr(w.logsumexp(0)), arr(w.mul(-1).max()));
    a[n - 1] = NaN;
    a[n >> 1] = -Infinity;
    const u = nb.tensor(a);
    ops.push(arr(u.max()), arr(u.min()), arr(u.logsumexp(0)));
    a[n - 1] = Infinity;
    ops.push(arr(nb.tensor(a).logsumexp(0)));
  }
  // Strided copies split by rows of their first (merged) dim: a permute, an expand, a slice
  // of a transposed view; the summing copy of a broadcast's backward onto separate rows
  // ([300, 1], split) and onto one row ([1, 401], not split: its rows add onto the same floats).
  const block = nb.randn([66, 128, 33]);
  ops.push(
    arr(block.permute([2, 0, 1]).contiguous()),
    arr(block.transpose(0, 1).narrow(0, 3, 100).contiguous()),
  );
  ops.push(arr(nb.randn([300, 1, 70]).expand([300, 5, 70]).contiguous()));
  for (const shape of [
    [300, 1],
    [1, 401],
  ]) {
    const small = nb.randn(shape, { requiresGrad: true });
    small
      .add(nb.randn([300, 401]))
      .square()
      .sum()
      .backward();
    ops.push(arr(small.grad));
  }
  // Index ops from 2^16 elements: an embedding lookup split by tokens (repeated ones) and its
  // backward by columns (132: 66 or 44 each); a select along a middle dim, whose backward's
  // 7 columns cannot split, and along the last (one word a row); gather by rows of the index,
  // its backward scatterAdd by rows along dim 1 but whole along dim 0 (rows meet there).
  const table = nb.randn([500, 132], { requiresGrad: true });
  const looked = nb.nn.functional.embedding(nb.randint(0, 500, [1000]), table);
  looked
    .mul(nb.randn([1000, 132]))
    .sum()
    .backward();
  ops.push(arr(looked), arr(table.grad));
  const mid = nb.randn([40, 600, 7], { requiresGrad: true });
  const picked = mid.indexSelect(1, nb.randint(0, 600, [500]));
  picked.square().sum().backward();
  ops.push(arr(picked), arr(mid.grad));
  ops.push(arr(nb.randn([300, 400]).indexSelect(1, nb.randint(0, 400, [350]))));
  for (const [dim, xs, is] of [
    [1, [300, 500], [300, 400]],
    [0, [500, 300], [400, 300]],
  ]) {
    const src = nb.randn(xs, { requiresGrad: true });
    const index = nb.randint(0, 500, is);
    const got = src.gather(dim, index);
    got.mul(nb.randn(is)).sum().backward();
    ops.push(arr(got), arr(src.grad), arr(nb.zeros(xs).scatterAdd(dim, index, nb.randn(is))));
  }
  // Comparisons, int32 arithmetic and where split by rows like binary_f32 (exact, so any cut
  // gives the same bits): equal shapes (one flat run), a broadcast row, a causal mask.
  const left = nb.randn([600, 301]);
  const right = nb.randn([301]);
  const ints = nb.randint(-1000, 1000, [600, 301]);
  ops.push(arr(left.gt(right).float()), arr(left.le(left.flip(0)).float()));
  ops.push(arr(ints.add(ints.flip(1)).float()), arr(ints.eq(nb.randint(-3, 3, [301])).float()));
  ops.push(arr(nb.where(left.gt(0), left, right)), arr(nb.where(ints.lt(0), 7, ints).float()));
  const causal = nb.ones([128, 128]).triu(1).gt(0);
  ops.push(arr(nb.randn([4, 4, 128, 128]).maskedFill(causal, -Infinity)));
  // Scans and products split by [r, inner] blocks: cumsum (float and int32) and its backward
  // (a suffix sum), prod and its backward, along a middle dim.
  const scanned = nb.randn([300, 400, 3], { requiresGrad: true });
  const prefix = scanned.cumsum(1);
  prefix
    .mul(nb.randn([300, 400, 3]))
    .sum()
    .backward();
  ops.push(arr(prefix), arr(scanned.grad), arr(nb.randint(-9, 9, [300, 400]).cumsum(1).float()));
  const factors = nb.rand([200, 330], { requiresGrad: true });
  const product = factors.add(0.5).prod(1);
  product.sum().backward();
  ops.push(arr(product), arr(factors.grad));
  // argmax/argmin along a dim (ties and a NaN row) and int32 sums and maxima, by blocks.
  const tied = nb.randint(0, 5, [20_000, 10]).float().toArray();
  tied[150_003] = NaN;
  const scores = nb.tensor(tied, { shape: [20_000, 10] });
  ops.push(arr(scores.argmax(1).float()), arr(scores.argmin(1).float()));
  ops.push(arr(nb.randn([40, 3000, 2]).argmax(1).float()));
  // Whole-tensor argmax/argmin by subtree parts, around the split size: ties across parts (the
  // first wins), an extreme repeated in two later parts, and a NaN in a late part.
  for (const n of [65_535, 65_536, 300_001]) {
    const flat = nb.randint(0, 5, [n]).float().toArray();
    const spiked = nb.randn([n]).toArray();
    [spiked[n - 9], spiked[Math.floor(n / 2) + 5]] = [50, 50];
    [spiked[n - 2], spiked[Math.floor(n * 0.7)]] = [-50, -50];
    const late = nb.randn([n]).toArray();
    late[n - 100] = NaN;
    for (const v of [flat, spiked, late]) {
      const t = nb.tensor(v);
      ops.push(arr(t.argmax().float()), arr(t.argmin().float()));
    }
  }
  // sort/argsort/topk by rows (each row's merges on one thread): below and above the split
  // size, ties (stable order), NaN rows, a middle dim, int32 keys, and topk's gradient.
  for (const [r, n] of [
    [8, 64],
    [40, 257],
  ]) {
    const keys = nb.randint(0, 9, [r, n]).float().toArray();
    keys[5] = NaN;
    keys[r * n - 7] = NaN;
    const k = nb.tensor(keys, { shape: [r, n] });
    const [sv, si] = k.sort(1, true);
    ops.push(arr(sv), arr(si.float()), arr(k.argsort(0).float()));
  }
  const ranked = nb.randn([30, 500, 4], { requiresGrad: true });
  const [top, at] = ranked.topk(17, 1);
  top
    .mul(nb.randn([30, 17, 4]))
    .sum()
    .backward();
  ops.push(arr(top), arr(at.float()), arr(ranked.grad));
  ops.push(arr(nb.randint(-50, 50, [64, 300]).sort(1)[0].float()));
  // multinomial with replacement by rows (each row's cumulative sums in that thread's scratch).
  ops.push(arr(nb.multinomial(nb.rand([8, 50]), 20, { replacement: true }).float()));
  ops.push(arr(nb.multinomial(nb.rand([300, 400]).pow(3), 64, { replacement: true }).float()));
  // oneHot by rows of the index, below and above the split size.
  ops.push(arr(nb.oneHot(nb.randint(0, 10, [500]), 10).float()));
  ops.push(arr(nb.oneHot(nb.randint(0, 300, [7, 100]), 301).float()));
  // unfold/fold (im2col and col2im) by planes, below and above the split size, with gradients.
  for (const size of [10, 60]) {
    const img = nb.randn([3, 8, size, size], { requiresGrad: true });
    const cols = nb.nn.functional.unfold(img, [3, 3], { padding: 1, stride: 2, dilation: 2 });
    const back = nb.nn.functional.fold(cols.mul(1.5), [size, size], [3, 3], {
      padding: 1,
      stride: 2,
      dilation: 2,
    });
    back.mul(nb.randn(back.shape)).sum().backward();
    ops.push(arr(cols), arr(back), arr(img.grad));
  }
  const counts = nb.randint(-99, 99, [700, 200, 3]);
  ops.push(arr(counts.sum(1).float()), arr(counts.max(1).float()));
  // Casts both ways by elements (NaN, infinities and halves in the float -> int32 direction).
  const wide = nb.randn([300_001]).mul(1e9).toArray();
  [wide[3], wide[300_000], wide[150_001]] = [NaN, Infinity, -2.5];
  ops.push(
    arr(nb.tensor(wide).int().float()),
    arr(nb.randint(-(2 ** 30), 2 ** 30, [300_001]).float()),
  );
  // Fills (full, and the zeroed gradient of a slice) and gradient accumulation (a second
  // backward adds into .grad), split by elements.
  ops.push(arr(nb.full([700, 401], -2.5)), arr(nb.ones([300_001]).sum()));
  const twice = nb.randn([600, 500], { requiresGrad: true });
  twice.square().sum().backward();
  twice.narrow(0, 7, 500).mul(3).sum().backward();
  ops.push(arr(twice.grad));
  // Random draws split by elements from 2^14 (normals from 2^11: a pair each per thread),
  // above and below that, odd lengths: each element is a function of the key and its index.
  for (const n of [100_001, 5_001, 1_001]) {
    ops.push(arr(nb.rand([n])), arr(nb.randn([n])), arr(nb.randint(-50, 50, [n]).float()));
    ops.push(arr(nb.nn.functional.dropout(nb.ones([n]), { p: 0.3 })));
  }
  // Gradient norms in chunks of a long gradient (200,003 floats: four chunks, a short last).
  for (const normType of [2, 1, 'inf']) {
    const ws = [
      nb.randn([200_003], { requiresGrad: true }),
      nb.randn([300], { requiresGrad: true }),
    ];
    ws.forEach((w) => (w.grad = nb.randn(w.shape)));
    const norm = nb.nn.utils.clipGradNorm(ws, 1, normType);
    // the float64 norm's bits, as four 16-bit integers (exact in float32)
    const normBits = Array.from(new Uint16Array(new Float64Array([norm]).buffer));
    ops.push(normBits, ...ws.map((w) => arr(w.grad)));
  }
  // Cross-entropy forward and backward by rows: class weights, label smoothing, ignored rows.
  const logits = nb.randn([301, 500], { requiresGrad: true });
  const labels = nb.randint(-1, 500, [301]);
  const ceLoss = nb.nn.functional.crossEntropy(logits, labels, {
    weight: nb.rand([500]).add(0.5),
    ignoreIndex: -1,
    labelSmoothing: 0.1,
  });
  ceLoss.backward();
  const perRow = nb.nn.functional.crossEntropy(logits, labels, {
    reduction: 'none',
    ignoreIndex: -1,
  });
  ops.push(arr(ceLoss), arr(perRow), arr(logits.grad));
  // ...and against class probabilities, both gradients.
  const soft = nb.randn([301, 500], { requiresGrad: true });
  const probsTarget = nb.rand([301, 500]).softmax(1).detach().requiresGrad_();
  nb.nn.functional.crossEntropy(soft, probsTarget, { labelSmoothing: 0.05 }).backward();
  ops.push(arr(soft.grad), arr(probsTarget.grad));
  for (const rows of [3, 333]) {
    const ln = new nb.nn.LayerNorm(257);
    const h = nb.randn([rows, 257], { requiresGrad: true });
    const out = ln.forward(h);
    out.square().sum().backward();
    ops.push(arr(out), arr(h.grad), arr(ln.weight.grad), arr(ln.bias.grad));
  }
  for (const make of [
    (ps) => new nb.optim.SGD(ps, { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
    (ps) => new nb.optim.RMSprop(ps, { lr: 0.01, momentum: 0.5, centered: true }),
    (ps) => new nb.optim.Adagrad(ps, { lr: 0.1, weightDecay: 0.01 }),
  ]) {
    const w = nb.randn([70_001], { requiresGrad: true });
    const o = make([w]);
    for (let i = 0; i < 3; i++) {
      o.zeroGrad();
      w.mul(w)
        .mul(p.narrow(0, 0, 70_001))
        .sum()
        .backward();
      o.step();
    }
    ops.push(arr(w));
  }
  // setFlushDenormal's pass over the optimizer state, split by elements: moments that decay
  // into subnormals (the gradient tiny once, then zero on half the lanes) become zeros.
  nb.setFlushDenormal(true);
  const fading = nb.zeros([70_001], { requiresGrad: true });
  const fadingOpt = new nb.optim.Adam([fading], { lr: 1e-3 });
  const half = nb.arange(70_001).lt(35_000).float();
  for (let i = 0; i < 25; i++) {
    fading
      .mul(i === 0 ? nb.full([70_001], 1e-36) : half)
      .sum()
      .backward();
    fadingOpt.step();
    fadingOpt.zeroGrad();
  }
  nb.setFlushDenormal(false);
  ops.push(arr(fadingOpt.stateDict().state[0].expAvg), arr(fading));
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
    cnnPrint,
    attentionPrint: fingerprint(attention),
    opsPrint: fingerprint(ops),
    recurrentPrints: Object.fromEntries(
      Object.entries(recurrent).map(([name, v]) => [name, fingerprint(v)]),
    ),
    losses,
    weights,
    weightsPrint: fingerprint(weights),
  };
}
