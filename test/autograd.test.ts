// Reverse-mode semantics: accumulation, shared inputs, broadcasting, detach, noGrad, deep graphs.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

const arr = (t: nb.Tensor | null): number[] => Array.from(t!.toArray());

describe('autograd', () => {
  it('applies the chain rule through several ops', () => {
    // f(x) = sum(tanh(x * w + 1)^2), df/dx = 2 tanh(u) (1 - tanh(u)^2) w
    const x = nb.tensor([0.5, -1.2, 2.0], { requiresGrad: true });
    const w = nb.tensor([1.5, 0.3, -0.7], { requiresGrad: true });
    x.mul(w).add(1).tanh().square().sum().backward();
    const expected = [0.5, -1.2, 2.0].map((xv, i) => {
      const wv = [1.5, 0.3, -0.7][i];
      const t = Math.tanh(xv * wv + 1);
      return 2 * t * (1 - t * t) * wv;
    });
    arr(x.grad).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
  });

  it('accumulates gradients across backward calls', () => {
    const x = nb.tensor([1, 2, 3], { requiresGrad: true, dtype: 'float32' });
    x.mul(x).sum().backward();
    x.mul(x).sum().backward();
    expect(arr(x.grad)).toEqual([4, 8, 12]);
  });

  it('sums the contributions of an input used twice', () => {
    const x = nb.tensor([1, 2], { requiresGrad: true, dtype: 'float32' });
    x.add(x).mul(x).sum().backward(); // d/dx 2x^2 = 4x
    expect(arr(x.grad)).toEqual([4, 8]);
  });

  it('gives two leaves independent gradient buffers', () => {
    const a = nb.tensor([1, 2], { requiresGrad: true, dtype: 'float32' });
    const b = nb.tensor([3, 4], { requiresGrad: true, dtype: 'float32' });
    a.add(b).sum().backward();
    a.mul(2).sum().backward(); // only a's gradient changes
    expect(arr(a.grad)).toEqual([3, 3]);
    expect(arr(b.grad)).toEqual([1, 1]);
  });

  it('reduces broadcast gradients to each input shape', () => {
    const a = nb.ones([3, 1], { requiresGrad: true });
    const b = nb.ones([1, 4], { requiresGrad: true });
    const c = nb.ones([4], { requiresGrad: true });
    a.mul(b).add(c).sum().backward();
    expect(a.grad!.shape).toEqual([3, 1]);
    expect(arr(a.grad)).toEqual([4, 4, 4]);
    expect(arr(b.grad)).toEqual([3, 3, 3, 3]);
    expect(arr(c.grad)).toEqual([3, 3, 3, 3]);
  });

  it('stops at detach() and records nothing under noGrad', () => {
    const x = nb.tensor([2, 3], { requiresGrad: true, dtype: 'float32' });
    x.mul(x.detach()).sum().backward(); // d/dx x*c = c
    expect(arr(x.grad)).toEqual([2, 3]);
    const y = nb.noGrad(() => x.mul(2));
    expect(y.requiresGrad).toBe(false);
    expect(y.gradFn).toBeNull();
    expect(x.mul(2).gradFn).toBe('mul');
  });

  it('walks a 10,000-op chain without overflowing the stack', () => {
    const x = nb.tensor([1], { requiresGrad: true, dtype: 'float32' });
    nb.tidy(() => {
      let y = x;
      for (let i = 0; i < 10_000; i++) y = y.mul(1.0001);
      y.sum().backward();
    });
    expect(x.grad!.item()).toBeCloseTo(1.0001 ** 10_000, 2);
  });

  it('takes an explicit upstream gradient for non-scalar outputs', () => {
    const x = nb.tensor([1, 2, 3], { requiresGrad: true, dtype: 'float32' });
    const y = x.mul(3);
    expect(() => y.backward()).toThrow(nb.ValueError);
    y.backward(nb.tensor([1, 0, 2], { dtype: 'float32' }));
    expect(arr(x.grad)).toEqual([3, 0, 6]);
    expect(() => y.backward(nb.ones([2]))).toThrow(/backward: grad shape \[2\]/);
  });

  it('refuses gradients on int32 tensors', () => {
    expect(() => nb.tensor([1, 2], { dtype: 'int32', requiresGrad: true })).toThrow(nb.DTypeError);
    expect(() => nb.tensor([1, 2]).requiresGrad_()).toThrow(nb.DTypeError);
  });
});
