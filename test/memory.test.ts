// Memory: scopes free what a block made, the heap stays flat over long loops, typed-array
// views survive memory growth, and disposed tensors fail loudly.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

describe('scopes', () => {
  it('tidy disposes intermediates and keeps what it returns', () => {
    const before = nb.memory();
    const kept = nb.tidy(() => {
      const a = nb.ones([100]);
      const b = a.mul(2);
      return { result: b.add(1), other: [b.sum()] };
    });
    expect(nb.memory().tensors).toBe(before.tensors + 2);
    expect(kept.result.toArray()[0]).toBe(3);
    expect(kept.other[0].item()).toBe(200);
    kept.result.dispose();
    kept.other[0].dispose();
    expect(nb.memory()).toMatchObject({ tensors: before.tensors, bytes: before.bytes });
  });

  it('nested tidy hands a returned tensor to the enclosing scope', () => {
    const before = nb.memory().tensors;
    nb.tidy(() => {
      const inner = nb.tidy(() => nb.ones([3]).mul(5));
      expect(inner.isDisposed).toBe(false);
      return undefined;
    });
    expect(nb.memory().tensors).toBe(before);
  });

  it('tidy works with async functions', async () => {
    const before = nb.memory().tensors;
    const out = await nb.tidy(async () => {
      const a = nb.ones([4]);
      await new Promise((r) => setTimeout(r, 1));
      return a.add(1);
    });
    expect(Array.from(out.toArray())).toEqual([2, 2, 2, 2]);
    expect(nb.memory().tensors).toBe(before + 1);
    out.dispose();
  });

  it('a `using` scope frees the block except kept tensors', () => {
    const before = nb.memory().tensors;
    let kept: nb.Tensor;
    {
      using s = nb.scope();
      const a = nb.ones([8]).mul(3);
      kept = s.keep(a.sum());
    }
    expect(nb.memory().tensors).toBe(before + 1);
    expect(kept.item()).toBe(24);
    kept.dispose();
  });

  it('frees tensors on error', () => {
    const before = nb.memory().tensors;
    expect(() =>
      nb.tidy(() => {
        nb.ones([3]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(nb.memory().tensors).toBe(before);
  });
});

describe('the wasm heap over long training loops', () => {
  it('stays flat over 10,000 forward/backward iterations', () => {
    nb.manualSeed(0);
    const w = nb.randn([16, 16], { requiresGrad: true });
    const b = nb.zeros([16], { requiresGrad: true });
    const x = nb.randn([32, 16]);
    const step = (): void =>
      nb.tidy(() => {
        const h = x.matmul(w).add(b).tanh();
        const loss = h.softmax(-1).logsumexp(-1).mean();
        loss.backward();
        nb.noGrad(() => {
          // a plain SGD update written with public ops
          const nw = w.sub(w.grad!.mul(1e-3));
          nw.dispose();
        });
        w.grad!.dispose();
        b.grad!.dispose();
        w.grad = null;
        b.grad = null;
      });
    for (let i = 0; i < 200; i++) step();
    const warm = nb.memory();
    for (let i = 0; i < 10_000; i++) step();
    const after = nb.memory();
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
  });
});

describe('tensor lifetime', () => {
  it('keeps data valid across memory growth', () => {
    const t = nb.arange(0, 1000, 1, { dtype: 'float32' });
    const copy = t.toArray();
    const heap = nb.memory().heapBytes;
    const big = nb.zeros([16 * 1024 * 1024]); // 64 MiB forces the memory to grow
    expect(nb.memory().heapBytes).toBeGreaterThan(heap);
    expect(Array.from(t.toArray())).toEqual(Array.from(copy));
    expect(t.sum().item()).toBe(499500);
    big.dispose();
  });

  it('throws DisposedError on use after dispose, and views keep storage alive', () => {
    const a = nb.arange(6, undefined, 1, { dtype: 'float32' });
    const v = a.reshape([2, 3]);
    a.dispose();
    a.dispose(); // twice is fine
    expect(() => a.add(1)).toThrow(nb.DisposedError);
    expect(Array.from(v.toArray())).toEqual([0, 1, 2, 3, 4, 5]);
    v.dispose();
  });

  it('keeps the graph of a returned tensor alive, so backward works after tidy', () => {
    const x = nb.tensor([1, 2], { requiresGrad: true, dtype: 'float32' });
    const before = nb.memory().tensors;
    const y = nb.tidy(() =>
      x
        .exp()
        .mul(nb.tensor([3, 4], { dtype: 'float32' }))
        .sum(),
    );
    y.backward();
    expect(Array.from(x.grad!.toArray())).toEqual(
      [3 * Math.exp(1), 4 * Math.exp(2)].map(Math.fround),
    );
    expect(nb.memory().tensors).toBeGreaterThan(before);
  });

  it('fails loudly when a tensor a graph saved was disposed by hand', () => {
    const x = nb.tensor([1, 2], { requiresGrad: true, dtype: 'float32' });
    const e = x.exp();
    const y = e.sum();
    e.dispose();
    expect(() => y.backward()).toThrow(nb.DisposedError);
  });
});

describe('the block cache', () => {
  it('reuses freed blocks of the same size class and can be emptied', () => {
    nb.emptyCache();
    const a = nb.zeros([1000]);
    const ptr = a.ptr;
    a.dispose();
    expect(nb.memory().cachedBytes).toBeGreaterThanOrEqual(4000);
    const b = nb.ones([990]); // same size class as 1000 floats
    expect(b.ptr).toBe(ptr);
    expect(Array.from(b.toArray().slice(0, 3))).toEqual([1, 1, 1]);
    b.dispose();
    nb.emptyCache();
    expect(nb.memory().cachedBytes).toBe(0);
  });

  it('keeps at most the configured number of bytes', () => {
    nb.emptyCache();
    nb.setCacheLimit(10_000);
    nb.zeros([4096]).dispose(); // a 16 KiB block exceeds the limit and goes straight back
    expect(nb.memory().cachedBytes).toBe(0);
    nb.zeros([1000]).dispose();
    expect(nb.memory().cachedBytes).toBe(4096);
    nb.setCacheLimit(256 * 1024 * 1024);
    nb.emptyCache();
  });
});

describe('the peak of live tensor bytes', () => {
  it('records the high-water mark, including what a backward pass makes, until reset', () => {
    const x = nb.keep(nb.randn([64, 64], { requiresGrad: true }));
    nb.resetPeakMemory();
    const base = nb.memory().bytes;
    expect(nb.memory().peakBytes).toBe(base);
    nb.tidy(() => {
      const big = nb.zeros([1000, 1000]); // 4 MB, freed at the end of the scope
      expect(nb.memory().peakBytes).toBeGreaterThanOrEqual(base + 4_000_000);
      big.mul(2);
    });
    const afterScope = nb.memory().peakBytes;
    expect(nb.memory().bytes).toBe(base);
    expect(afterScope).toBeGreaterThanOrEqual(base + 8_000_000); // big and big · 2
    nb.resetPeakMemory();
    expect(nb.memory().peakBytes).toBe(base);
    // A backward's intermediate gradients count although they are gone when it returns.
    nb.tidy(() => x.matmul(x).tanh().sum().backward());
    expect(nb.memory().peakBytes).toBeGreaterThan(nb.memory().bytes + 3 * 64 * 64 * 4);
    x.dispose();
  });
});
