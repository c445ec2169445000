// Memory safety and hostile input (issue 9): one named regression test per finding of the
// fuzzing pass. Sizes past what wasm32 can hold must be typed OutOfMemoryErrors that change
// nothing, a heap above 2 GiB must keep working, and loads must validate before they write.
// Some tests allocate GiBs on purpose; each stays within a few seconds (fills, not random draws).
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as nb from '../ts/index.js';
import { sizeClass } from '../ts/tensor/storage.js';

type Tensor = nb.Tensor;
const GiB = 2 ** 30;

beforeAll(async () => {
  await nb.init();
});

/** Bytes of an unchanged tensor's data, to compare before/after a failing call. */
const snapshot = (t: Tensor): number[] => Array.from(t.toArray());

/** What nb.memory() must say: the sum over the given live tensors (plus what was there before). */
function liveBytes(ts: Tensor[]): number {
  return ts.reduce((a, t) => a + t.size * 4, 0);
}

/** Runs `fn`, expects an OutOfMemoryError whose message names `shape` and a byte count. */
function expectOom(fn: () => unknown, shape: string): void {
  let err: unknown = null;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(nb.OutOfMemoryError);
  expect((err as Error).message).toContain(shape);
  expect((err as Error).message).toMatch(/\d+ bytes/);
}

/** A safetensors file from a header (object or raw JSON text) and `data` bytes of payload. */
function safetensors(header: object | string, data = 0): Uint8Array {
  const json = new TextEncoder().encode(
    typeof header === 'string' ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.length + data);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

/** An IDX header (magic 0 0 0x08 ndim, then big-endian sizes) with no payload. */
function idx(shape: number[]): Uint8Array {
  const out = new Uint8Array(4 + 4 * shape.length);
  const v = new DataView(out.buffer);
  out.set([0, 0, 0x08, shape.length]);
  shape.forEach((s, d) => v.setUint32(4 + 4 * d, s));
  return out;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

describe('finding 1: sizes past 4 GiB are OutOfMemoryErrors, never wrapped', () => {
  it('full([2**32 + 2000]) throws and leaves a live tensor and nb.memory() exact', () => {
    const live = nb.full([1000], 3);
    const before = nb.memory();
    expectOom(() => nb.full([2 ** 32 + 2000], 7), '[4294969296]');
    expectOom(() => nb.zeros([2 ** 32]), '[4294967296]');
    expect(snapshot(live)).toEqual(new Array(1000).fill(3));
    const after = nb.memory();
    expect(after.tensors).toBe(before.tensors);
    expect(after.bytes).toBe(before.bytes);
    live.dispose();
  });

  it('a matmul whose output would pass 4 GiB throws instead of returning garbage', () => {
    const a = nb.ones([65536, 1]);
    const b = nb.ones([1, 65537]);
    const bytes = nb.memory().bytes;
    expectOom(() => a.matmul(b), '[65536, 65537]');
    expect(nb.memory().bytes).toBe(bytes);
    // a shape that fits still multiplies correctly
    const c = a.narrow(0, 0, 3).matmul(b.narrow(1, 0, 5));
    expect(Array.from(c.toArray())).toEqual(new Array(15).fill(1));
    [a, b, c].forEach((t) => t.dispose());
  });

  it('a tensor within 64 KiB of 4 GiB (whose block rounded to 2^32 = 0) is refused', () => {
    const live = nb.full([16], 5);
    // 4 GiB - 32 bytes: its size class used to round to exactly 2^32, which wasm saw as 0.
    expectOom(() => nb.zeros([GiB - 8]), `[${GiB - 8}]`);
    expect(snapshot(live)).toEqual(new Array(16).fill(5));
    live.dispose();
  });

  it('a 3.5–4 GiB request keeps its size (its size class no longer rounds up to 2^32)', () => {
    for (const bytes of [3.5 * GiB, 3.75 * GiB + 12, 4 * GiB - 65536 - 4]) {
      const block = sizeClass(bytes);
      expect(block).toBeGreaterThanOrEqual(bytes);
      expect(block - bytes).toBeLessThan(65536);
      expect(block).toBeLessThan(2 ** 32);
    }
    // small sizes keep their four classes per power of two
    expect(sizeClass(100)).toBe(112);
    expect(sizeClass(1000)).toBe(1024);
  });

  it('a 12-byte IDX file or a safetensors file with shape [0, 4294967295] is a typed error', () => {
    const before = nb.memory();
    const e1 = thrown(() => nb.data.readIdx(idx([0, 4294967295])));
    expect(e1).toBeInstanceOf(nb.ValueError);
    expect(e1.message).toMatch(/readIdx: shape \[0, 4294967295\]/);
    const file = safetensors({ t: { dtype: 'F32', shape: [0, 4294967295], data_offsets: [0, 0] } });
    const e2 = thrown(() => nb.io.loadSafetensors(file));
    expect(e2).toBeInstanceOf(nb.ValueError);
    expect(e2.message).toMatch(/"t" has shape \[0, 4294967295\]/);
    expect(nb.memory()).toEqual({ ...before, heapBytes: nb.memory().heapBytes });
  });

  it('an empty tensor whose reduction would need 8 GiB throws OutOfMemoryError, bytes stay exact', () => {
    const t = nb.data.readIdx(idx([0, 2 ** 31 - 1]));
    expect(t.shape).toEqual([0, 2 ** 31 - 1]);
    const before = nb.memory();
    expectOom(() => t.sum(0), `[1, ${2 ** 31 - 1}]`);
    expect(nb.memory().bytes).toBe(before.bytes);
    expect(Number.isFinite(nb.memory().bytes)).toBe(true);
    expect(t.sum().item()).toBe(0); // the full reduction needs one element
    t.dispose();
  });
});

describe('findings 2 and 3: a heap above 2 GiB works, and out of memory is recoverable', () => {
  it('the module can grow its memory to the full 4 GiB (65536 pages)', async () => {
    const bytes = readFileSync(new URL('../ts/wasm/nabla.wasm', import.meta.url));
    const { instance } = await WebAssembly.instantiate(bytes, {});
    const memory = instance.exports.memory as WebAssembly.Memory;
    memory.grow(65536 - memory.buffer.byteLength / 65536);
    expect(memory.buffer.byteLength).toBe(2 ** 32);
  });

  it('a 2.3 GiB dataset tensor stays alive through Linear creation and a training step', () => {
    // 2,457,600,000 bytes, allocated without a fill: the first write to 600,000 fresh pages
    // costs the OS tens of seconds on a loaded machine, and grown wasm memory reads as zeros.
    const data = nb.Tensor.empty([600000, 1024]);
    expect(data.size * 4).toBeGreaterThan(2 * GiB);
    nb.manualSeed(0);
    const lin = new nb.nn.Linear(1024, 10);
    // pointers above 2^31 come back unsigned
    expect(lin.weight.ptr).toBeGreaterThan(0);
    expect(nb.memory().heapBytes).toBeGreaterThan(2 * GiB);
    const opt = new nb.optim.SGD(lin.parameters(), { lr: 0.5 });
    const x = nb.randn([8, 1024]);
    const y = nb.tensor([0, 1, 2, 3, 4, 5, 6, 7]);
    const w0 = Float64Array.from(lin.weight.toArray());
    const b0 = Float64Array.from(lin.bias!.toArray());
    const xs = x.toArray();
    const logits = lin.forward(x);
    // float64 reference of the forward pass
    const out = logits.toArray();
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 10; j++) {
        let s = b0[j];
        for (let k = 0; k < 1024; k++) s += xs[i * 1024 + k] * w0[j * 1024 + k];
        expect(out[i * 10 + j]).toBeCloseTo(s, 3);
      }
    const loss = nb.nn.functional.crossEntropy(logits, y);
    loss.backward();
    opt.step();
    // the step moved the bias by -lr * mean softmax-minus-onehot
    const probs = nb.softmax(logits.detach(), -1).toArray();
    const b1 = lin.bias!.toArray();
    for (let j = 0; j < 10; j++) {
      let g = 0;
      for (let i = 0; i < 8; i++) g += (probs[i * 10 + j] - (y.toArray()[i] === j ? 1 : 0)) / 8;
      expect(b1[j]).toBeCloseTo(b0[j] - 0.5 * g, 5);
    }
    // broadcasting (descriptor scratch above 2 GiB) works
    const z = nb.ones([3, 4]).add(nb.arange(4));
    expect(Array.from(z.toArray())).toEqual([1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
    const last = data.narrow(0, 599999, 1);
    last.copy_(2);
    expect(last.sum().item()).toBe(2048);
    last.dispose();

    // finding 3: an out-of-memory failure in the allocator itself changes nothing
    const before = nb.memory();
    const kept = snapshot(lin.weight);
    expectOom(() => nb.zeros([Math.floor((1.9 * GiB) / 4)]), 'bytes');
    expect(nb.memory().tensors).toBe(before.tensors);
    expect(nb.memory().bytes).toBe(before.bytes);
    expect(snapshot(lin.weight)).toEqual(kept);
    const next = nb.ones([2, 2]).mul(3);
    expect(Array.from(next.toArray())).toEqual([3, 3, 3, 3]);

    [data, x, y, logits, loss, z, next].forEach((t) => t.dispose());
    opt.dispose();
    lin.dispose();
    nb.emptyCache();
    const again = nb.ones([2, 3]).add(nb.ones([3]));
    expect(Array.from(again.toArray())).toEqual([2, 2, 2, 2, 2, 2]);
    again.dispose();
  });

  it('after an OutOfMemoryError the next op works and nb.memory() matches the live tensors', () => {
    const live = [nb.full([5], 2), nb.arange(7)];
    const base = nb.memory();
    for (const shape of [[2 ** 31], [70000, 70000], [2 ** 40, 2 ** 40]]) {
      expectOom(() => nb.ones(shape), fmtShape(shape));
    }
    const m = nb.memory();
    expect(m.tensors).toBe(base.tensors);
    expect(m.bytes).toBe(base.bytes);
    const made = live[0].add(1);
    expect(nb.memory().bytes).toBe(base.bytes + liveBytes([made]));
    expect(Array.from(made.toArray())).toEqual([3, 3, 3, 3, 3]);
    [...live, made].forEach((t) => t.dispose());
  });
});

function fmtShape(s: number[]): string {
  return `[${s.join(', ')}]`;
}

describe('finding 4: loadCheckpoint validates everything before it applies anything', () => {
  function build(seed: number) {
    nb.manualSeed(seed);
    const model = new nb.nn.Linear(3, 2);
    const optimizer = new nb.optim.Adam(model.parameters(), { lr: 0.1 });
    const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
    const x = nb.randn([4, 3]);
    model.forward(x).sum().backward();
    optimizer.step();
    scheduler.step();
    x.dispose();
    return { model, optimizer, scheduler };
  }

  /** Rewrites the `nabla.checkpoint` metadata of a checkpoint file, keeping its tensors. */
  function withMeta(bytes: Uint8Array, edit: (meta: Record<string, unknown>) => void): Uint8Array {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))) as {
      __metadata__: Record<string, string>;
    };
    const meta = JSON.parse(header.__metadata__['nabla.checkpoint']) as Record<string, unknown>;
    edit(meta);
    header.__metadata__['nabla.checkpoint'] = JSON.stringify(meta);
    const json = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + json.length + bytes.length - 8 - n);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    out.set(bytes.subarray(8 + n), 8 + json.length);
    return out;
  }

  /** Everything a load could change: parameters, optimizer moments, lr, RNG position. */
  function state(r: ReturnType<typeof build>) {
    const sd = r.optimizer.stateDict();
    const moments = Object.values(sd.state).flatMap((e) =>
      Object.values(e).map((v) => (v instanceof nb.Tensor ? snapshot(v) : v)),
    );
    Object.values(sd.state).forEach((e) =>
      Object.values(e).forEach((v) => v instanceof nb.Tensor && v.dispose()),
    );
    return {
      params: r.model.parameters().map(snapshot),
      moments,
      lr: r.optimizer.paramGroups[0].lr,
      sched: JSON.stringify(r.scheduler.stateDict()),
      rng: nb.getRngState(),
    };
  }

  it.each([
    ['rng missing', (m: Record<string, unknown>) => delete m.rng, /RNG state must be an object/],
    ['rng null', (m: Record<string, unknown>) => (m.rng = null), /RNG state must be an object/],
    [
      'rng counter "abc"',
      (m: Record<string, unknown>) => (m.rng = { seed: 1, counter: 'abc' }),
      /counter must be a non-negative safe integer, got "abc"/,
    ],
    [
      'rng counter 2^53',
      (m: Record<string, unknown>) => (m.rng = { seed: 1, counter: 2 ** 53 }),
      /counter must be a non-negative safe integer, got 9007199254740992/,
    ],
    [
      'rng seed -1',
      (m: Record<string, unknown>) => (m.rng = { seed: -1, counter: 0 }),
      /seed must be an integer in \[0, 2\^32\)/,
    ],
    ['epoch "x"', (m: Record<string, unknown>) => (m.epoch = 'x'), /epoch must be/],
    [
      'optimizer state key "01"',
      (m: Record<string, unknown>) => {
        const o = m.optimizer as { state: Record<string, unknown> };
        o.state['01'] = o.state['0'];
      },
      /"01" is not an index/,
    ],
  ])('%s: a ValueError, and model, optimizer, scheduler and RNG unchanged', (_, edit, msg) => {
    const a = build(1);
    const file = nb.train.saveCheckpoint(a, { epoch: 3 });
    const b = build(2);
    nb.manualSeed(77);
    const before = state(b);
    const tensors = nb.memory().tensors;
    const bad = withMeta(file, edit);
    const err = thrown(() => nb.train.loadCheckpoint(bad, b));
    expect(err).toBeInstanceOf(nb.ValueError);
    expect(err.message).toMatch(/^loadCheckpoint: /);
    expect(err.message).toMatch(msg);
    expect(state(b)).toEqual(before);
    expect(nb.memory().tensors).toBe(tensors);
    // the untouched file still loads
    expect(nb.train.loadCheckpoint(file, b).epoch).toBe(3);
    [a, b].forEach((r) => {
      r.optimizer.dispose();
      r.model.dispose();
    });
  });

  it('saveCheckpoint refuses an epoch that loadCheckpoint would refuse', () => {
    const model = new nb.nn.Linear(2, 2);
    for (const epoch of [1.5, -1, NaN]) {
      const e = thrown(() => nb.train.saveCheckpoint({ model }, { epoch }));
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/^saveCheckpoint: epoch must be a non-negative integer/);
    }
    const info = nb.train.loadCheckpoint(nb.train.saveCheckpoint({ model }, { epoch: 4 }), {
      model,
    });
    expect(info.epoch).toBe(4);
    model.dispose();
  });

  it('setRngState rejects a bad counter or seed, and a huge valid counter does not freeze', () => {
    nb.manualSeed(5);
    const at = nb.getRngState();
    for (const bad of [
      { seed: 1, counter: 'abc' },
      { seed: 1, counter: 2 ** 53 },
      { seed: 1, counter: -1 },
      { seed: 1.5, counter: 0 },
      { seed: 2 ** 32, counter: 0 },
      null,
    ]) {
      const e = thrown(() => nb.setRngState(bad as never));
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/^setRngState: /);
    }
    expect(nb.getRngState()).toEqual(at);
    nb.setRngState({ seed: 9, counter: 2 ** 53 - 2 });
    const draws = [0, 1, 2].map(() => nb.rand([4]));
    const [a, b, c] = draws.map(snapshot);
    expect(a).not.toEqual(b);
    expect(b).not.toEqual(c);
    draws.forEach((t) => t.dispose());
  });
});

describe('finding 5: state dicts reject non-tensor entries and non-canonical keys', () => {
  it('strict loadStateDict({ weight, bias: null }) throws and writes nothing', () => {
    const lin = new nb.nn.Linear(2, 2);
    const w = snapshot(lin.weight);
    const b = snapshot(lin.bias!);
    const weight = nb.ones([2, 2]);
    for (const strict of [true, false]) {
      const e = thrown(() => lin.loadStateDict({ weight, bias: null as never }, { strict }));
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/loadStateDict: bias is null, not a Tensor/);
    }
    expect(snapshot(lin.weight)).toEqual(w);
    expect(snapshot(lin.bias!)).toEqual(b);
    weight.dispose();
    lin.dispose();
  });

  it('Optimizer.loadStateDict rejects the key "01" and leaks nothing', () => {
    const lin = new nb.nn.Linear(3, 2);
    const opt = new nb.optim.Adam(lin.parameters(), { lr: 0.1, amsgrad: true });
    const x = nb.randn([4, 3]);
    lin.forward(x).sum().backward();
    opt.step();
    const sd = opt.stateDict();
    const tensors = nb.memory().tensors;
    const cases: Record<string, Record<string, number | Tensor> | undefined>[] = [
      { ...sd.state, '01': sd.state[1] }, // two spellings of index 1
      { 0: sd.state[0], '01': sd.state[1] },
      { ...sd.state, '1.0': sd.state[1] },
    ];
    for (const state of cases) {
      const e = thrown(() =>
        opt.loadStateDict({ state: state as never, paramGroups: sd.paramGroups }),
      );
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/Adam\.loadStateDict: state (01|1\.0) belongs to no parameter/);
      expect(nb.memory().tensors).toBe(tensors);
    }
    opt.loadStateDict(sd); // the canonical dict still loads
    expect(nb.memory().tensors).toBe(tensors);
    Object.values(sd.state).forEach((e) =>
      Object.values(e).forEach((v) => v instanceof nb.Tensor && v.dispose()),
    );
    [x].forEach((t) => t.dispose());
    opt.dispose();
    lin.dispose();
  });
});

describe('finding 6: edge cases that trapped or produced nonsense', () => {
  it('reductions with dim 0 or -1 on a 0-d tensor work as in PyTorch (forward and gradient)', () => {
    const t = nb.tensor(2.5, { requiresGrad: true });
    for (const dim of [0, -1]) {
      expect(t.sum(dim).item()).toBe(2.5);
      expect(t.sum(dim, true).shape).toEqual([]);
      expect(t.mean(dim).item()).toBe(2.5);
      expect(t.max(dim).item()).toBe(2.5);
      expect(t.min(dim).item()).toBe(2.5);
      expect(t.logsumexp(dim).item()).toBeCloseTo(2.5, 6);
      expect(t.argmax(dim).item()).toBe(0);
    }
    t.sum(0).mul(3).backward();
    expect(t.grad!.item()).toBe(3);
    const e = thrown(() => t.sum(1));
    expect(e).toBeInstanceOf(nb.ShapeError);
    expect(e.message).toMatch(/sum: dim 1 is out of range/);
    expect(
      nb.gradcheck((x: Tensor) => x.mul(x).sum(0), [nb.tensor(1.5, { requiresGrad: true })]),
    ).toMatchObject({ ok: true });
  });

  it('0-d reductions and 0-d shape ops match the PyTorch fixtures (value, shape, gradient)', () => {
    const fx = JSON.parse(
      readFileSync(new URL('./fixtures/memsafe.json', import.meta.url), 'utf8'),
    ) as {
      reductions: {
        op: 'sum' | 'mean' | 'max' | 'min' | 'logsumexp' | 'argmax';
        x: number;
        dim: number;
        keepdim: boolean;
        shape: number[];
        y: number;
        grad: number | null;
      }[];
      scalarForms: Record<string, boolean>;
    };
    expect(fx.reductions.length).toBe(42);
    for (const c of fx.reductions) {
      const x = nb.tensor(c.x, { dtype: 'float32', requiresGrad: c.grad !== null });
      const y = c.op === 'argmax' ? x.argmax(c.dim, c.keepdim) : x[c.op](c.dim, c.keepdim);
      expect(y.shape, `${c.op}(${c.dim}, ${c.keepdim})`).toEqual(c.shape);
      expect(y.item()).toBeCloseTo(c.y, 6);
      if (c.grad !== null) {
        y.mul(3).sum().backward();
        expect(x.grad!.item(), `grad of ${c.op}`).toBeCloseTo(c.grad, 6);
      }
    }
    const a = nb.tensor(2);
    const accepts = (fn: () => unknown): boolean => {
      try {
        fn();
        return true;
      } catch (e) {
        expect(e).toBeInstanceOf(nb.ShapeError);
        return false;
      }
    };
    expect({
      cat: accepts(() => nb.cat([a, nb.tensor(3)])),
      slice: accepts(() => a.slice(0, 0, 1)),
      narrow: accepts(() => a.narrow(0, 0, 1)),
      transpose: accepts(() => a.transpose(0, -1)),
      sum_dim_1: accepts(() => a.sum(1)),
    }).toEqual(fx.scalarForms);
  });

  it('cat, slice and narrow of 0-d tensors are ShapeErrors and nb.memory().bytes stays finite', () => {
    const a = nb.tensor(2);
    const b = nb.tensor(3);
    const bytes = nb.memory().bytes;
    for (const [fn, op] of [
      [() => nb.cat([a, b]), 'cat'],
      [() => nb.cat([nb.tensor([1]), b]), 'cat'],
      [() => a.slice(0, 0, 1), 'slice'],
      [() => a.narrow(0, 0, 1), 'narrow'],
    ] as const) {
      const e = thrown(fn);
      expect(e).toBeInstanceOf(nb.ShapeError);
      expect(e.message).toMatch(new RegExp(`^${op}: cannot be applied to .*0-d tensor`));
    }
    expect(Number.isFinite(nb.memory().bytes)).toBe(true);
    expect(nb.memory().bytes).toBeLessThanOrEqual(bytes + 4); // only the [1] made in the list
    expect(a.transpose(0, -1).item()).toBe(2);
    // flatten of a 0-d tensor takes dims 0 and -1 only (found by the op fuzzer)
    expect(a.flatten(0, -1).shape).toEqual([1]);
    const f = thrown(() => a.flatten(0, 5));
    expect(f).toBeInstanceOf(nb.ShapeError);
    expect(f.message).toMatch(/flatten: dim 5 is out of range/);
  });

  it('randint bounds outside int32 are ValueErrors', () => {
    for (const [lo, hi] of [
      [-(2 ** 40), 2 ** 40],
      [0, 2 ** 31],
      [-(2 ** 31) - 1, 0],
    ]) {
      const e = thrown(() => nb.randint(lo, hi, [3]));
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/randint: .* int32's range/);
    }
    const r = nb.randint(-(2 ** 31), 2 ** 31 - 1, [1000]).toArray();
    expect(r.some((v) => v < 0) && r.some((v) => v > 0)).toBe(true);
  });

  it('a safetensors header with rank 100,000 is refused at once; rank 64 loads', () => {
    const shape = new Array<number>(100000).fill(1);
    const t0 = performance.now();
    const e = thrown(() =>
      nb.io.loadSafetensors(safetensors({ t: { dtype: 'F32', shape, data_offsets: [0, 4] } }, 4)),
    );
    expect(performance.now() - t0).toBeLessThan(500);
    expect(e).toBeInstanceOf(nb.ValueError);
    expect(e.message).toMatch(/"t" has rank 100000, more than the 64 dims/);
    const ok = nb.io.loadSafetensors(
      safetensors({ t: { dtype: 'F32', shape: new Array(64).fill(1), data_offsets: [0, 4] } }, 4),
    ) as unknown as Record<string, unknown>;
    const loaded = (ok.tensors ?? ok) as Record<string, Tensor>;
    expect(loaded.t.ndim).toBe(64);
    expect(loaded.t.sum().item()).toBe(0);
    loaded.t.dispose();
  });

  it('a deeply nested header is a ValueError, not a stack overflow', () => {
    for (const text of [
      '{"a":' + '['.repeat(200000) + ']'.repeat(200000) + '}',
      '['.repeat(200000),
      '{"t":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}',
      '{"__metadata__":{"a":{"b":{"c":"d"}}}}',
    ]) {
      const e = thrown(() => nb.io.loadSafetensors(safetensors(text, 4)));
      expect(e).toBeInstanceOf(nb.ValueError);
      expect(e.message).toMatch(/loadSafetensors: the header nests arrays or objects more than 3/);
    }
    // brackets inside strings do not count
    const e = thrown(() => nb.io.loadSafetensors(safetensors('{"[[[[[":{"{{{{":1}}', 0)));
    expect(e.message).not.toMatch(/nests/);
  });
});
