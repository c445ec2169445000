// PyTorch's autograd contract: a graph is freed by backward (retainGraph keeps it), in-place
// edits of saved tensors are refused, async tidy/noGrad do not leak into concurrent code, and
// autograd.grad / retainGrad / enableGrad behave as torch.autograd.grad, retain_grad and
// enable_grad.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

const leaf = (values: number[], shape?: number[]) =>
  nb.tensor(values, { shape: shape ?? [values.length], requiresGrad: true });
const arr = (t: nb.Tensor | null) => Array.from(t!.toArray());

describe('backward frees the graph', () => {
  it('a second backward through the same graph throws, and changes no gradient', () => {
    const w = leaf([1, 2, 3]);
    const loss = w.mul(w).sum();
    loss.backward();
    expect(arr(w.grad)).toEqual([2, 4, 6]);
    expect(() => loss.backward()).toThrow(nb.ValueError);
    expect(() => loss.backward()).toThrow(/backward through the graph a second time.*retainGraph/);
    expect(arr(w.grad)).toEqual([2, 4, 6]);
  });

  it('retainGraph allows another backward, which accumulates', () => {
    const w = leaf([1, 2, 3]);
    const loss = w.mul(w).sum();
    loss.backward(null, { retainGraph: true });
    loss.backward();
    expect(arr(w.grad)).toEqual([4, 8, 12]);
    expect(() => loss.backward()).toThrow(/second time/);
  });

  it('two losses sharing a subgraph: the second backward needs retainGraph on the first', () => {
    const w = leaf([1, 2]);
    const h = w.mul(3);
    const a = h.sum();
    const b = h.square().sum();
    a.backward();
    expect(() => b.backward()).toThrow(/second time/);
    const h2 = w.mul(3);
    h2.sum().backward(null, { retainGraph: true });
    expect(() => h2.square().sum().backward()).not.toThrow();
  });
});

describe('version counters refuse stale saved tensors', () => {
  it('the issue example: w.mul(x).sum() then x.mul_(100) throws instead of 100x gradients', () => {
    const w = leaf([1, 2, 3]);
    const x = nb.tensor([4, 5, 6], { dtype: 'float32' });
    const loss = w.mul(x).sum();
    x.mul_(100);
    expect(() => loss.backward()).toThrow(nb.ValueError);
    expect(() => loss.backward()).toThrow(
      /modified by an inplace operation: float32 \[3\], read by mul, is at version 1; expected version 0/,
    );
    expect(w.grad).toBeNull();
  });

  it('an index tensor edited out of range is refused before any kernel runs', () => {
    const x = leaf([1, 2, 3, 4], [2, 2]);
    const idx = nb.tensor([[0], [1]], { dtype: 'int32' });
    const y = x.gather(1, idx).sum();
    idx.fill_(99);
    expect(() => y.backward()).toThrow(/modified by an inplace operation/);
  });

  it('a parameter updated by an optimizer between forward and backward is refused', () => {
    const w = leaf([1, 2]);
    const x = nb.tensor([3, 4]);
    const opt = new nb.optim.SGD([w], { lr: 0.1 });
    w.mul(x).sum().backward();
    const loss = w.mul(x).sum(); // reads w at its current version
    opt.step(); // writes w in place
    expect(() => loss.backward()).toThrow(/inplace operation.*read by mul/);
  });

  it('edits through a view (reshape shares the version) are seen', () => {
    const w = leaf([1, 2, 3, 4]);
    const x = nb.tensor([1, 1, 1, 1]);
    const loss = w.mul(x).sum();
    x.reshape([2, 2]).add_(1);
    expect(() => loss.backward()).toThrow(/inplace/);
  });

  it('edits before the op are fine', () => {
    const w = leaf([1, 2]);
    const x = nb.tensor([1, 1]);
    x.mul_(3);
    w.mul(x).sum().backward();
    expect(arr(w.grad)).toEqual([3, 3]);
  });
});

describe('autograd.grad, retainGrad, enableGrad', () => {
  it('autograd.grad returns gradients without touching .grad', () => {
    const a = leaf([1, 2, 3]);
    const b = leaf([4, 5, 6]);
    const y = a.mul(b).sum();
    const [ga, gb] = nb.autograd.grad(y, [a, b]);
    expect(arr(ga)).toEqual([4, 5, 6]);
    expect(arr(gb)).toEqual([1, 2, 3]);
    expect(a.grad).toBeNull();
    expect(b.grad).toBeNull();
    expect(() => nb.autograd.grad(y, [a])).toThrow(/second time/);
  });

  it('gradOutputs, several outputs, non-leaf inputs and retainGraph', () => {
    const x = leaf([1, 2]);
    const h = x.mul(2);
    const y1 = h.square(); // [4, 16]
    const y2 = h.sum();
    const [gh, gx] = nb.autograd.grad([y1, y2], [h, x], {
      gradOutputs: [nb.tensor([1, 10], { dtype: 'float32' }), null],
      retainGraph: true,
    });
    // d/dh: 2h * [1, 10] + 1 = [2*2+1, 2*4*10+1]
    expect(arr(gh)).toEqual([5, 81]);
    expect(arr(gx)).toEqual([10, 162]);
    const [again] = nb.autograd.grad(y2, [x]);
    expect(arr(again)).toEqual([2, 2]);
  });

  it('a gradOutput of another dtype is a DTypeError', () => {
    const x = leaf([1, 2]);
    const y = x.mul(2);
    expect(() => nb.autograd.grad(y, [x], { gradOutputs: nb.tensor([1, 1]) })).toThrow(
      nb.DTypeError,
    );
  });

  it('an unreachable input throws unless allowUnused', () => {
    const a = leaf([1]);
    const b = leaf([2]);
    const y = a.mul(3).sum();
    expect(() => nb.autograd.grad(y, [b], { retainGraph: true })).toThrow(/not reachable/);
    expect(nb.autograd.grad(y, [a, b], { allowUnused: true })[1]).toBeNull();
  });

  it('retainGrad stores a non-leaf gradient', () => {
    const x = leaf([1, 2]);
    const h = x.mul(3).retainGrad();
    h.square().sum().backward();
    expect(arr(h.grad)).toEqual([6, 12]);
    expect(arr(x.grad)).toEqual([18, 36]);
  });

  it('enableGrad records inside noGrad', () => {
    const x = leaf([1, 2]);
    const y = nb.noGrad(() => nb.enableGrad(() => x.mul(2)));
    expect(y.requiresGrad).toBe(true);
    expect(nb.noGrad(() => x.mul(2)).requiresGrad).toBe(false);
  });
});

describe('async tidy and noGrad do not touch concurrent code', () => {
  const tick = () => new Promise((r) => setTimeout(r, 1));

  it('an async tidy leaves tensors that concurrent code made while it was pending', async () => {
    let concurrent: nb.Tensor | null = null;
    const pending = nb.tidy(async () => {
      const mine = nb.ones([2]);
      await tick();
      mine.add(1);
      await tick();
      return 7;
    });
    concurrent = nb.ones([3]); // made while the tidy is pending
    await tick();
    await pending;
    expect(concurrent.isDisposed).toBe(false);
    concurrent.dispose();
  });

  it('overlapping async tidies keep their own returned tensors and free the rest', async () => {
    const before = nb.memory().tensors;
    const run = (v: number) =>
      nb.tidy(async () => {
        const tmp = nb.full([4], v);
        await tick();
        const out = tmp.mul(2);
        await tick();
        return out;
      });
    const [a, b] = await Promise.all([run(1), run(2)]);
    expect(arr(a)).toEqual([2, 2, 2, 2]);
    expect(arr(b)).toEqual([4, 4, 4, 4]);
    expect(nb.memory().tensors).toBe(before + 2);
    a.dispose();
    b.dispose();
  });

  it('an async noGrad does not switch off gradients for concurrent code', async () => {
    const x = leaf([1, 2]);
    let inside = true;
    const pending = nb.noGrad(async () => {
      await tick();
      inside = x.mul(2).requiresGrad;
    });
    const outside = x.mul(2).requiresGrad; // runs while the noGrad is pending
    await pending;
    expect(outside).toBe(true);
    expect(inside).toBe(false);
    expect(nb.isGradEnabled()).toBe(true);
  });
});
