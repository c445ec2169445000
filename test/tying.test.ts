// Weight tying in nn.Module: one tensor assigned as a parameter of two modules is one
// parameter (namedParameters/parameters yield it once, as PyTorch's remove_duplicate), its
// gradient sums both uses, optimizers update it once, stateDict() keeps both names, and a
// strict load accepts either name alone or both (equal values), changing nothing on failure.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn, Tensor } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

const V = 7;
const D = 5;

/** An embedding and a bias-free head; `tied` shares the embedding's weight with the head. */
class TinyLM extends nn.Module {
  emb: nn.Embedding;
  head: nn.Linear;
  constructor(tied: boolean) {
    super();
    this.emb = new nn.Embedding(V, D);
    this.head = new nn.Linear(D, V, { bias: false });
    if (tied) this.head.weight = this.emb.weight;
  }
  forward(ids: Tensor): Tensor {
    return this.head.forward(this.emb.forward(ids).tanh());
  }
}

const ids = (): Tensor => nb.tensor(Int32Array.from([1, 3, 3, 0, 6, 2]), { shape: [6] });
const targets = (): Tensor => nb.tensor(Int32Array.from([3, 3, 0, 6, 2, 5]), { shape: [6] });

function lossOf(m: TinyLM): Tensor {
  return nn.functional.crossEntropy(m.forward(ids()), targets());
}

describe('weight tying', () => {
  it('yields a tied parameter once, and every name with removeDuplicate=false', () => {
    nb.manualSeed(1);
    const m = new TinyLM(true);
    expect(m.namedParameters().map(([k]) => k)).toEqual(['emb.weight']);
    expect(m.parameters().length).toBe(1);
    expect(m.namedParameters('', false).map(([k]) => k)).toEqual(['emb.weight', 'head.weight']);
    expect(Object.keys(m.stateDict())).toEqual(['emb.weight', 'head.weight']);
    expect(m.namedParameters('model').map(([k]) => k)).toEqual(['model.emb.weight']);
  });

  it('sums the gradients of both uses (vs an untied copy)', () => {
    nb.manualSeed(2);
    const tied = new TinyLM(true);
    const untied = new TinyLM(false);
    nb.noGrad(() => {
      untied.emb.weight.copy_(tied.emb.weight.detach());
      untied.head.weight.copy_(tied.emb.weight.detach());
    });
    lossOf(tied).backward();
    lossOf(untied).backward();
    const sum = untied.emb.weight.grad!.add(untied.head.weight.grad!);
    assertClose(tied.emb.weight.grad!.toArray(), sum.toArray(), { rtol: 1e-5, atol: 1e-7 });
    // Both uses contribute: the sum differs from either alone.
    const headOnly = untied.head.weight.grad!.toArray();
    expect(
      Math.max(...Array.from(sum.toArray(), (v, i) => Math.abs(v - headOnly[i]))),
    ).toBeGreaterThan(1e-4);
  });

  it('matches central finite differences', () => {
    nb.manualSeed(3);
    const m = new TinyLM(true);
    lossOf(m).backward();
    const g = m.emb.weight.grad!.toArray();
    const w = m.emb.weight;
    const h = 1e-2;
    for (const i of [0, 7, 16, 33]) {
      const base = w.toArray();
      const at = (d: number): number =>
        nb.noGrad(() => {
          const b = Float32Array.from(base);
          b[i] += d;
          w.copy_(nb.tensor(b, { shape: [V, D] }));
          return lossOf(m).item();
        });
      const fd = (at(h) - at(-h)) / (2 * h);
      nb.noGrad(() => w.copy_(nb.tensor(base, { shape: [V, D] })));
      expect(Math.abs(fd - g[i])).toBeLessThan(2e-3 + 1e-2 * Math.abs(g[i]));
    }
  });

  it('updates a tied weight once per optimizer step', () => {
    nb.manualSeed(4);
    const m = new TinyLM(true);
    const before = m.emb.weight.toArray();
    const opt = new nb.optim.SGD(m.parameters(), { lr: 0.5 });
    lossOf(m).backward();
    const g = m.emb.weight.grad!.toArray();
    opt.step();
    const after = m.emb.weight.toArray();
    assertClose(
      after,
      before.map((v, i) => v - 0.5 * g[i]),
      { rtol: 1e-6, atol: 1e-7 },
    );
    expect(m.head.weight).toBe(m.emb.weight);
  });

  it('loads strictly from both names, or from either name alone', () => {
    nb.manualSeed(5);
    const src = new TinyLM(true);
    const want = src.emb.weight.toArray();
    const sd = src.stateDict();
    for (const keys of [['emb.weight', 'head.weight'], ['emb.weight'], ['head.weight']]) {
      const dst = new TinyLM(true);
      const part: Record<string, Tensor> = {};
      for (const k of keys) part[k] = sd[k];
      const r = dst.loadStateDict(part);
      expect(r).toEqual({ missingKeys: [], unexpectedKeys: [] });
      expect(Array.from(dst.head.weight.toArray())).toEqual(Array.from(want));
      expect(dst.head.weight).toBe(dst.emb.weight);
    }
  });

  it('round-trips through safetensors with both names', () => {
    nb.manualSeed(6);
    const src = new TinyLM(true);
    const bytes = nb.io.saveSafetensors(src.stateDict());
    const loaded = nb.io.loadSafetensors(bytes);
    expect(Object.keys(loaded).sort()).toEqual(['emb.weight', 'head.weight']);
    const dst = new TinyLM(true);
    dst.loadStateDict(loaded);
    expect(Array.from(dst.emb.weight.toArray())).toEqual(Array.from(src.emb.weight.toArray()));
  });

  it('rejects differing values under the two names and changes nothing', () => {
    nb.manualSeed(7);
    const dst = new TinyLM(true);
    const before = dst.emb.weight.toArray();
    const a = nb.randn([V, D]);
    const b = a.add(1e-3);
    expect(() => dst.loadStateDict({ 'emb.weight': a, 'head.weight': b })).toThrow(
      /emb\.weight and head\.weight name one tied parameter but hold different values/,
    );
    expect(() => dst.loadStateDict({ 'emb.weight': a, 'head.weight': b })).toThrow(nb.ValueError);
    expect(Array.from(dst.emb.weight.toArray())).toEqual(Array.from(before));
  });

  it('still reports real missing, unexpected and mis-shaped keys', () => {
    nb.manualSeed(8);
    const dst = new TinyLM(true);
    const before = dst.emb.weight.toArray();
    expect(() => dst.loadStateDict({})).toThrow(
      /missing keys \[emb\.weight, head\.weight\], unexpected keys \[\]/,
    );
    expect(() =>
      dst.loadStateDict({ 'emb.weight': nb.randn([V, D]), extra: nb.zeros([1]) }),
    ).toThrow(/unexpected keys \[extra\]/);
    expect(() => dst.loadStateDict({ 'head.weight': nb.randn([D, V]) })).toThrow(nb.ShapeError);
    expect(() =>
      dst.loadStateDict({ 'emb.weight': nb.randn([V, D]), 'head.weight': nb.randn([D, V]) }),
    ).toThrow(/head\.weight has shape/);
    expect(Array.from(dst.emb.weight.toArray())).toEqual(Array.from(before));
    const r = dst.loadStateDict({}, { strict: false });
    expect(r.missingKeys).toEqual(['emb.weight', 'head.weight']);
  });

  it('an untied model reports its own missing names', () => {
    const m = new TinyLM(false);
    expect(m.parameters().length).toBe(2);
    expect(() => m.loadStateDict({ 'emb.weight': nb.randn([V, D]) })).toThrow(
      /missing keys \[head\.weight\]/,
    );
  });
});
