// Plain PyTorch-style loops keep memory flat with no tidy, scope, keep or dispose: each loop
// runs 10,000 steps (generation: 500 sequences x 64 tokens) and the live tensor count, their
// bytes and the wasm heap must be identical between a point after warm-up and the end.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const { nn, optim, data } = nb;

beforeAll(async () => {
  await nb.init();
});

/** Live tensors, bytes and heap: equal snapshots mean nothing accumulated in between. */
const snapshot = () => {
  const m = nb.memory();
  return { tensors: m.tensors, bytes: m.bytes, heap: m.heapBytes };
};

function classification(n: number, features: number, classes: number, seed: number) {
  nb.manualSeed(seed);
  const x = nb.randn([n, features]);
  const y = nb.randint(0, classes, [n]);
  return new data.DataLoader(new data.TensorDataset(x, y), { batchSize: 16, shuffle: true, seed });
}

function mlp(features: number, classes: number) {
  return new nn.Sequential(new nn.Linear(features, 32), new nn.ReLU(), new nn.Linear(32, classes));
}

/** Yields batches from `loader` epoch after epoch until `steps` have been taken. */
function* batches<T>(loader: Iterable<T>, steps: number): Generator<[number, T]> {
  let i = 0;
  for (;;) {
    const it = loader[Symbol.iterator]();
    for (;;) {
      if (i >= steps) return; // before pulling: no batch is made that the loop never sees
      const r = it.next();
      if (r.done) break;
      yield [i++, r.value];
    }
  }
}

const STEPS = 10_000;
// Same phase as the last step (9,999) in every cycle: 4 micro-batches, 16 batches an epoch.
const WARM = 1_999;

describe('plain loops keep the heap flat with no memory calls', () => {
  it('the training loop from the issue (zeroGrad, forward, backward, step, loss.item())', () => {
    const loader = classification(256, 8, 4, 1);
    const model = mlp(8, 4);
    const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
    const lossFn = new nn.CrossEntropyLoss();
    const losses: number[] = [];
    let warm = snapshot();
    for (const [i, [x, y]] of batches(loader, STEPS)) {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
      losses.push(loss.item()); // read after step(): it must still be alive
      if (i === WARM) warm = snapshot();
    }
    expect(snapshot()).toEqual(warm);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
  });

  it('gradient accumulation (zeroGrad and step every 4 micro-batches)', () => {
    const loader = classification(256, 8, 4, 2);
    const model = mlp(8, 4);
    const opt = new optim.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const lossFn = new nn.CrossEntropyLoss();
    let warm = snapshot();
    let last = 0;
    for (const [i, [x, y]] of batches(loader, STEPS)) {
      const loss = lossFn.forward(model.forward(x), y).div(4);
      loss.backward();
      if (i % 4 === 3) {
        opt.step();
        opt.zeroGrad();
      }
      last = loss.item();
      if (i === WARM) warm = snapshot();
    }
    expect(snapshot()).toEqual(warm);
    expect(Number.isFinite(last)).toBe(true);
  });

  it('two optimizers in one loop, both losses logged at the end of each iteration', () => {
    const loader = classification(256, 8, 4, 3);
    const enc = new nn.Sequential(new nn.Linear(8, 16), new nn.Tanh());
    const head = new nn.Linear(16, 4);
    const optE = new optim.Adam(enc.parameters(), { lr: 1e-3 });
    const optH = new optim.Adam(head.parameters(), { lr: 1e-3 });
    const lossFn = new nn.CrossEntropyLoss();
    let warm = snapshot();
    const log: number[] = [];
    for (const [i, [x, y]] of batches(loader, STEPS)) {
      // head step on detached features, then encoder step through the head
      const h = enc.forward(x);
      optH.zeroGrad();
      const lossH = lossFn.forward(head.forward(h.detach()), y);
      lossH.backward();
      optH.step();
      optE.zeroGrad();
      const lossE = lossFn.forward(head.forward(h), y);
      lossE.backward();
      optE.step();
      log.push(lossH.item() + lossE.item());
      if (i === WARM) warm = snapshot();
    }
    expect(snapshot()).toEqual(warm);
  });

  it('evaluation under noGrad with no optimizer at all', () => {
    const loader = classification(256, 8, 4, 4);
    const model = mlp(8, 4);
    let correct = 0;
    let seen = 0;
    let warm = snapshot();
    nb.noGrad(() => {
      for (const [i, [x, y]] of batches(loader, STEPS)) {
        correct += model.forward(x).argmax(1).eq(y).sum().item();
        seen += y.size;
        if (i === WARM) warm = snapshot();
      }
    });
    expect(snapshot()).toEqual(warm);
    expect(seen).toBeGreaterThan(0);
    expect(correct).toBeGreaterThanOrEqual(0);
  });

  it('greedy generation of 500 sequences x 64 tokens', () => {
    nb.manualSeed(5);
    const vocab = 16;
    const model = new nn.Sequential(
      new nn.Embedding(vocab, 8),
      new nn.Tanh(),
      new nn.Linear(8, vocab),
    );
    let warm = snapshot();
    const texts: number[][] = [];
    nb.noGrad(() => {
      for (let s = 0; s < 500; s++) {
        let tokens = nb.tensor([[s % vocab]], { dtype: 'int32' });
        for (let t = 0; t < 63; t++) {
          const logits = model.forward(tokens);
          const next = logits.narrow(1, t, 1).argmax(-1);
          tokens = nb.cat([tokens, next], 1);
        }
        texts.push(Array.from(tokens.toArray()));
        if (s === 50) warm = snapshot();
      }
    });
    expect(snapshot()).toEqual(warm);
    expect(texts).toHaveLength(500);
    expect(texts.every((t) => t.length === 64)).toBe(true);
  });
});

describe('what the steps release, and what they do not', () => {
  it('a tensor unused for two steps is released; using it says when and how to keep it', () => {
    const loader = classification(64, 4, 2, 6);
    const model = mlp(4, 2);
    const opt = new optim.SGD(model.parameters(), { lr: 0.1 });
    const lossFn = new nn.CrossEntropyLoss();
    let first: nb.Tensor | null = null;
    let kept: nb.Tensor | null = null;
    for (const [i, [x, y]] of batches(loader, 6)) {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
      if (i === 1) {
        first = loss;
        kept = nb.keep(loss.mul(1));
      }
    }
    expect(first!.isDisposed).toBe(true);
    expect(() => first!.item()).toThrow(nb.DisposedError);
    expect(() => first!.item()).toThrow(
      /released automatically at step \d+ \(SGD\.step\(\)\).*nb\.keep/,
    );
    expect(kept!.isDisposed).toBe(false);
    expect(Number.isFinite(kept!.item())).toBe(true);
    kept!.dispose();
  });

  it('tensors in use stay alive however many steps pass, and data made before the loop is never released', () => {
    const before = nb.randn([4, 4]); // made before this optimizer's first step
    const model = mlp(4, 2);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01 });
    const lossFn = new nn.CrossEntropyLoss();
    const y = nb.tensor([0, 1, 0, 1], { dtype: 'int32' });
    let inUse: nb.Tensor | null = null;
    for (let i = 0; i < 20; i++) {
      opt.zeroGrad();
      if (i === 3) inUse = nb.randn([4, 4]); // made inside the loop, then read every step
      const x = inUse ?? nb.randn([4, 4]);
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
    }
    expect(inUse!.isDisposed).toBe(false);
    expect(before.isDisposed).toBe(false);
    expect(y.isDisposed).toBe(false);
  });

  it('a validation pass inside the training loop does not release what the training holds', () => {
    // Truncated BPTT: the detached state is carried from step to step; every 5 steps a
    // validation loop calls the model under noGrad (its own boundaries) many times.
    nb.manualSeed(7);
    const emb = new nn.Embedding(8, 4);
    const lstm = new nn.LSTM(4, 6, { batchFirst: true });
    const head = new nn.Linear(6, 8);
    const params = [...emb.parameters(), ...lstm.parameters(), ...head.parameters()];
    const opt = new optim.Adam(params, { lr: 1e-2 });
    const lossFn = new nn.CrossEntropyLoss();
    const x = nb.randint(0, 8, [2, 5]);
    const y = nb.randint(0, 8, [10]);
    const forward = (s: [nb.Tensor, nb.Tensor] | null) => {
      const [out, next] = lstm.forward(emb.forward(x), s);
      return [head.forward(out).reshape([10, 8]), next] as const;
    };
    let state: [nb.Tensor, nb.Tensor] | null = null;
    let before = nb.memory();
    for (let i = 0; i < 60; i++) {
      opt.zeroGrad();
      const [logits, next] = forward(state);
      lossFn.forward(logits, y).backward();
      opt.step();
      state = [next[0].detach(), next[1].detach()];
      if (i % 5 === 4) {
        nb.noGrad(() => {
          let s: [nb.Tensor, nb.Tensor] | null = null;
          for (let k = 0; k < 10; k++) s = [...lstm.forward(emb.forward(x), s)[1]];
        });
      }
      if (i === 19) before = nb.memory();
    }
    expect(state![0].isDisposed).toBe(false);
    expect(nb.memory().tensors).toBe(before.tensors);
    expect(nb.memory().heapBytes).toBe(before.heapBytes);
  });

  it('after a validation pass the training loop is released step by step again', () => {
    // The validation's model calls are the latest boundaries when training resumes; the
    // optimizer's next step must take the resumed iteration's tensors back, or every training
    // step until the next validation pass would accumulate.
    const loader = classification(256, 8, 4, 3);
    const model = mlp(8, 4);
    const opt = new optim.Adam(model.parameters(), { lr: 1e-2 });
    const lossFn = new nn.CrossEntropyLoss();
    const xVal = nb.randn([32, 8]);
    const counts: number[] = [];
    for (const [i, [x, y]] of batches(loader, 300)) {
      opt.zeroGrad();
      const loss = lossFn.forward(model.forward(x), y);
      loss.backward();
      opt.step();
      loss.item(); // after step(), as PyTorch users log it
      if (i % 100 === 49) nb.noGrad(() => [0, 1, 2].forEach(() => model.forward(xVal).argmax(1)));
      counts.push(nb.memory().tensors);
    }
    // Two steps after each validation pass the loop is back to what it held before it, plus
    // the outputs of one validation call (3 layers + argmax; the steps keep a loop's last
    // iteration until that loop runs again): no training step stays behind until the next pass.
    for (const after of [52, 152, 252]) {
      expect(counts.slice(after, after + 40)).toEqual(new Array(40).fill(counts[45]! + 4));
    }
  });

  it('a tidy inside a loop still frees its block at once', () => {
    const model = mlp(4, 2);
    const opt = new optim.SGD(model.parameters(), { lr: 0.01 });
    const x = nb.randn([4, 4]);
    const before = nb.memory().tensors;
    for (let i = 0; i < 5; i++) {
      opt.zeroGrad();
      nb.tidy(() => model.forward(x).square().mean().backward());
      opt.step();
    }
    // parameters' gradients are the only new tensors
    expect(nb.memory().tensors).toBe(before + model.parameters().length);
  });
});
