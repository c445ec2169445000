// Creating and reading tensors: dtype inference, nested data, randomness, the GC safety net.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

describe('creation and reading', () => {
  it('infers shape and dtype like PyTorch', () => {
    const i = nb.tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect([i.shape, i.dtype, i.size, i.ndim]).toEqual([[2, 3], 'int32', 6, 2]);
    const f = nb.tensor([0.5, 1]);
    expect(f.dtype).toBe('float32');
    expect(nb.tensor(3.5).shape).toEqual([]);
    expect(nb.tensor(3.5).item()).toBe(3.5);
    expect(nb.tensor(new Float32Array([1, 2, 3, 4]), { shape: [2, 2] }).tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(nb.tensor([1, 2], { requiresGrad: true }).dtype).toBe('float32');
    expect(() => nb.tensor([[1, 2], [3]])).toThrow(nb.ShapeError);
    expect(() => nb.tensor(new Float32Array(3), { shape: [2, 2] })).toThrow(
      /tensor: shape \[2, 2\] needs 4 values, got 3/,
    );
  });

  it('fills constants, ranges and identities', () => {
    expect(Array.from(nb.full([2, 2], 7).toArray())).toEqual([7, 7, 7, 7]);
    expect(nb.zerosLike(nb.ones([2], { dtype: 'int32' })).dtype).toBe('int32');
    expect(Array.from(nb.arange(5).toArray())).toEqual([0, 1, 2, 3, 4]);
    expect(nb.arange(5).dtype).toBe('int32');
    const fr = nb.arange(0, 1, 0.25);
    expect([fr.dtype, Array.from(fr.toArray())]).toEqual(['float32', [0, 0.25, 0.5, 0.75]]);
    expect(Array.from(nb.arange(5, 0, -2).toArray())).toEqual([5, 3, 1]);
    expect(nb.eye(2, 3).tolist()).toEqual([
      [1, 0, 0],
      [0, 1, 0],
    ]);
    expect(() => nb.arange(0, 1, 0)).toThrow(nb.ValueError);
  });

  it('makes randomness reproducible with manualSeed', () => {
    nb.manualSeed(42);
    const a = [nb.rand([5]).toArray(), nb.randn([5]).toArray(), nb.randint(0, 10, [5]).toArray()];
    nb.manualSeed(42);
    const b = [nb.rand([5]).toArray(), nb.randn([5]).toArray(), nb.randint(0, 10, [5]).toArray()];
    expect(b).toEqual(a);
    nb.manualSeed(43);
    expect(nb.rand([5]).toArray()).not.toEqual(a[0]);
  });

  it('draws from the right distributions', () => {
    nb.manualSeed(1);
    const u = nb.rand([100_000]);
    const n = nb.randn([100_000]);
    const r = nb.randint(-3, 4, [100_000]);
    expect(u.min().item()).toBeGreaterThanOrEqual(0);
    expect(u.max().item()).toBeLessThan(1);
    expect(u.mean().item()).toBeCloseTo(0.5, 2);
    expect(n.mean().item()).toBeCloseTo(0, 1);
    expect(n.std().item()).toBeCloseTo(1, 1);
    expect([r.min().item(), r.max().item(), r.dtype]).toEqual([-3, 3, 'int32']);
  });

  it('reads back as lists, numbers and strings', () => {
    const t = nb.tensor([[1.5], [2.5]]);
    expect(t.tolist()).toEqual([[1.5], [2.5]]);
    expect(() => t.item()).toThrow(/item: only one-element tensors/);
    expect(String(nb.tensor([1, 2]))).toBe('tensor([1,2], shape=[2], dtype=int32)');
  });

  it('updates in place only where PyTorch allows it', () => {
    const w = nb.ones([3], { requiresGrad: true });
    expect(() => w.sub_(1)).toThrow(/sub_: a tensor that requires grad/);
    nb.noGrad(() => w.sub_(nb.tensor([0.5, 1, 1.5])));
    expect(Array.from(w.toArray())).toEqual([0.5, 0, -0.5]);
    const z = nb.zeros([2, 2]);
    z.copy_(nb.tensor([1, 2]));
    expect(z.tolist()).toEqual([
      [1, 2],
      [1, 2],
    ]);
    expect(() => z.copy_(nb.ones([3]))).toThrow(nb.ShapeError);
  });
});

describe('the FinalizationRegistry safety net', () => {
  it('frees tensors that became garbage outside any scope', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'run with --expose-gc (vitest.config.ts sets it)').toBeTypeOf('function');
    const settle = async (): Promise<void> => {
      for (let i = 0; i < 5; i++) {
        gc!();
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await settle(); // collect garbage left by earlier tests first
    const before = nb.memory().tensors;
    (() => {
      for (let i = 0; i < 100; i++) nb.ones([1000]);
    })();
    expect(nb.memory().tensors).toBe(before + 100);
    await settle();
    expect(nb.memory().tensors).toBe(before);
    // Tensors that leave a scope (returned by tidy) are armed when they become unowned.
    (() => {
      nb.tidy(() => Array.from({ length: 50 }, () => nb.ones([100]).mul(2)));
    })();
    expect(nb.memory().tensors).toBe(before + 50);
    await settle();
    expect(nb.memory().tensors).toBe(before);
  });
});
