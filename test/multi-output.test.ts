// Autograd nodes with several outputs: one node per op, one backward call that sees every
// output's gradient (null for outputs that got none), and split/chunk built on it.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { recordMulti } from '../ts/autograd/node.js';

beforeAll(async () => {
  await nb.init();
});

const leaf = (values: number[], shape?: number[]) =>
  nb.tensor(values, { shape: shape ?? [values.length], requiresGrad: true });
const arr = (t: nb.Tensor | null) => Array.from(t!.toArray());

/** An op with outputs (2x, 3x) whose backward logs what it was given. */
function twoOutputs(x: nb.Tensor, log: (number[] | null)[][]): [nb.Tensor, nb.Tensor] {
  const a = nb.noGrad(() => x.mul(2));
  const b = nb.noGrad(() => x.mul(3));
  return recordMulti([a, b] as [nb.Tensor, nb.Tensor], 'twoOutputs', [x], (gs) => {
    log.push(gs.map((g) => (g ? arr(g) : null)));
    const [ga, gb] = gs;
    let gx = ga ? ga.mul(2) : nb.zerosLike(x);
    if (gb) gx = gx.add(gb.mul(3));
    return [gx];
  });
}

describe('multi-output nodes', () => {
  it('all outputs share one node and its name', () => {
    const [a, b] = twoOutputs(leaf([1, 2]), []);
    expect(a.gradFn).toBe('twoOutputs');
    expect(b.gradFn).toBe('twoOutputs');
    expect(a.requiresGrad && b.requiresGrad).toBe(true);
    const [p, q] = twoOutputs(nb.tensor([1, 2]), []);
    expect(p.requiresGrad || q.requiresGrad).toBe(false);
  });

  it('backward runs once with every output gradient, in output order', () => {
    const log: (number[] | null)[][] = [];
    const x = leaf([1, 2]);
    const [a, b] = twoOutputs(x, log);
    a.mul(nb.tensor([1, 10]))
      .add(b.mul(nb.tensor([100, 1000])))
      .sum()
      .backward();
    expect(log).toEqual([
      [
        [1, 10],
        [100, 1000],
      ],
    ]);
    expect(arr(x.grad)).toEqual([2 + 300, 20 + 3000]);
  });

  it('an output with no gradient arrives as null', () => {
    const log: (number[] | null)[][] = [];
    const x = leaf([1, 2]);
    const [, b] = twoOutputs(x, log);
    b.sum().backward();
    expect(log).toEqual([[null, [1, 1]]]);
    expect(arr(x.grad)).toEqual([3, 3]);
  });

  it('an output reached but given no gradient still lets the node run once', () => {
    const log: (number[] | null)[][] = [];
    const x = leaf([1, 2]);
    const [a, b] = twoOutputs(x, log);
    // a feeds the loss only through a detached path, b directly.
    const loss = b.sum().add(a.detach().sum());
    loss.backward();
    expect(log).toEqual([[null, [1, 1]]]);
  });

  it('outputs used at different depths of the graph are both seen', () => {
    const log: (number[] | null)[][] = [];
    const x = leaf([1, 2]);
    const [a, b] = twoOutputs(x, log);
    const deep = a.mul(2).exp().log().mul(0.5); // == a
    deep.add(b).sum().backward();
    expect(log.length).toBe(1);
    expect(log[0][0]![0]).toBeCloseTo(1, 5);
    expect(log[0][1]).toEqual([1, 1]);
    expect(arr(x.grad)[0]).toBeCloseTo(5, 5);
  });

  it('a second backward through the node throws unless retainGraph', () => {
    const x = leaf([1, 2]);
    const [a, b] = twoOutputs(x, []);
    const la = a.sum();
    la.backward();
    expect(() => b.sum().backward()).toThrow(/second time.*twoOutputs/);
    const y = leaf([1, 2]);
    const [c, d] = twoOutputs(y, []);
    c.sum().backward(null, { retainGraph: true });
    d.sum().backward();
    expect(arr(y.grad)).toEqual([5, 5]);
  });

  it('refuses a saved tensor modified in place', () => {
    const x = leaf([1, 2]);
    const s = nb.tensor([1, 1]);
    const [a] = recordMulti(
      [nb.noGrad(() => x.mul(1)), nb.noGrad(() => x.mul(1))],
      'savesS',
      [x],
      (gs) => [gs[0]!.mul(s)],
      [s],
    );
    s.add_(nb.tensor([1, 1]));
    expect(() => a.sum().backward()).toThrow(/modified by an inplace operation.*savesS/);
  });

  it('autograd.grad and retainGrad see each output', () => {
    const x = leaf([1, 2]);
    const [a, b] = twoOutputs(x, []);
    b.retainGrad();
    const loss = a.sum().add(b.mul(b).sum());
    const [ga, gx] = nb.autograd.grad(loss, [a, x], { retainGraph: true });
    expect(arr(ga)).toEqual([1, 1]);
    expect(arr(gx)).toEqual([2 + 3 * 2 * 3, 2 + 3 * 2 * 6]);
    loss.backward();
    expect(arr(b.grad)).toEqual([6, 12]);
  });

  it('an integer output gets no gradient function; the float one still backpropagates', () => {
    const x = leaf([3, 1, 2]);
    const log: (number[] | null)[][] = [];
    const vals = nb.noGrad(() => x.mul(1));
    const idx = nb.tensor([0, 1, 2], { dtype: 'int32' });
    recordMulti([vals, idx], 'valuesAndIndices', [x], (gs) => {
      log.push(gs.map((g) => (g ? arr(g) : null)));
      return [gs[0]!.mul(1)];
    });
    expect(idx.requiresGrad).toBe(false);
    expect(idx.gradFn).toBe(null);
    vals.sum().backward();
    expect(log).toEqual([[[1, 1, 1], null]]);
    expect(arr(x.grad)).toEqual([1, 1, 1]);
  });

  it('a tidy that returns one output keeps the node working for backward', () => {
    const x = leaf([1, 2]);
    const b = nb.tidy(() => twoOutputs(x, [])[1]);
    b.sum().backward();
    expect(arr(x.grad)).toEqual([3, 3]);
  });
});

describe('split/chunk as one multi-output node', () => {
  const x5 = () => leaf([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [5, 2]);

  it('every piece shares the split node', () => {
    const pieces = x5().split(2);
    expect(pieces.map((p) => p.gradFn)).toEqual(['split', 'split', 'split']);
  });

  it('unused pieces get zero gradient, used ones their own', () => {
    const x = x5();
    const [p0, , p2] = x.chunk(3, 0);
    p0.mul(nb.tensor([1, 2, 3, 4], { shape: [2, 2] }))
      .sum()
      .add(p2.mul(7).sum())
      .backward();
    expect(arr(x.grad)).toEqual([1, 2, 3, 4, 0, 0, 0, 0, 7, 7]);
  });

  it('split along dim 1 with sections', () => {
    const x = leaf(
      Array.from({ length: 12 }, (_, i) => i),
      [2, 6],
    );
    const [a, , c] = x.split([1, 3, 2], 1);
    a.sum().add(c.mul(2).sum()).backward();
    expect(arr(x.grad)).toEqual([1, 0, 0, 0, 2, 2, 1, 0, 0, 0, 2, 2]);
  });

  it('backward allocates one gradient buffer however many pieces are unused', () => {
    const x = leaf(
      Array.from({ length: 32 }, (_, i) => i),
      [8, 4],
    );
    const pieces = x.split(1, 0);
    const before = nb.memory();
    // One gradient for one of eight pieces: only x's gradient (and its seed) may remain.
    const loss = pieces[3].sum();
    loss.backward();
    const after = nb.memory();
    expect(arr(x.grad)).toEqual(Array.from({ length: 32 }, (_, i) => (i >= 12 && i < 16 ? 1 : 0)));
    // loss itself + x.grad: nothing per piece survives.
    expect(after.tensors - before.tensors).toBe(2);
    expect(after.bytes - before.bytes).toBeLessThanOrEqual(4 + 32 * 4 + 64);
  });

  it('the backward creates exactly one tensor that survives (the input gradient)', () => {
    const x = leaf(
      Array.from({ length: 24 }, (_, i) => i),
      [4, 6],
    );
    const pieces = x.chunk(3, 1);
    const node = (
      pieces[0] as unknown as {
        _node: { backward: (gs: (nb.Tensor | null)[]) => (nb.Tensor | null)[] };
      }
    )._node;
    const g = nb.ones([4, 2]);
    const before = nb.memory().tensors;
    const [gx] = node.backward([null, g, null]);
    expect(nb.memory().tensors - before).toBe(1);
    expect(arr(gx)).toEqual(
      Array.from({ length: 24 }, (_, i) => (i % 6 === 2 || i % 6 === 3 ? 1 : 0)),
    );
  });

  it('passes gradcheck', () => {
    nb.manualSeed(3);
    const x = nb.randn([5, 4]).requiresGrad_();
    const f = (t: nb.Tensor) => {
      const [a, b, c] = t.chunk(3, 0);
      return nb.cat([c.mul(2), a.exp(), b.square()], 0);
    };
    expect(nb.gradcheck(f, [x]).ok).toBe(true);
    const g = (t: nb.Tensor) => t.split([1, 3], 1)[1].tanh();
    expect(nb.gradcheck(g, [x]).ok).toBe(true);
  });
});
