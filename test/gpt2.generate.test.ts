// GPT-2's key/value cache and generation: incremental and chunked decoding equal the full
// forward, padding with an attention mask, next-token filtering (temperature, top-k, top-p)
// against float64 references and over many draws, greedy generation against argmax of full
// forwards, seeded reproducibility, eos handling, and a flat heap over 200 generated tokens.
//
// Tolerances: cached vs full logits rtol 1e-5, atol 1e-5 (the same float32 math, only summed
// over keys in a different blocking).
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn, Tensor } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

const TOL = { rtol: 1e-5, atol: 1e-5 };

function tinyModel(seed: number, extra: nn.GPT2ConfigOptions = {}): nn.GPT2LMHeadModel {
  nb.manualSeed(seed);
  const m = new nn.GPT2LMHeadModel({
    vocabSize: 53,
    nPositions: 64,
    nEmbd: 32,
    nLayer: 2,
    nHead: 4,
    initializerRange: 0.3,
    ...extra,
  });
  return m.eval();
}

const ids = (rows: number[][]): Tensor =>
  nb.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

function randomRows(B: number, T: number, V: number, seed: number): number[][] {
  let s = seed;
  const next = (): number => ((s = (s * 1103515245 + 12345) >>> 0) >>> 8) % V;
  return Array.from({ length: B }, () => Array.from({ length: T }, next));
}

/** Rows t0..t1 (exclusive) of logits [B, T, V] as a flat array. */
function positions(logits: Tensor, t0: number, t1: number): Float32Array {
  return logits.narrow(1, t0, t1 - t0).toArray() as Float32Array;
}

describe('KV cache', () => {
  it('one token at a time equals the full forward', () => {
    const m = tinyModel(1);
    const rows = randomRows(2, 12, 53, 5);
    nb.noGrad(() => {
      const full = m.forward(ids(rows), { useCache: false });
      expect(full.pastKeyValues).toBeNull();
      let out = m.forward(ids(rows.map((r) => r.slice(0, 5))));
      assertClose(positions(out.logits, 0, 1), positions(full.logits, 0, 1), TOL, 'prefill');
      assertClose(out.logits.toArray(), positions(full.logits, 0, 5), TOL, 'prefill');
      for (let t = 5; t < 12; t++) {
        out = m.forward(ids(rows.map((r) => [r[t]])), { pastKeyValues: out.pastKeyValues });
        const [k, v] = out.pastKeyValues![1];
        expect(k.shape).toEqual([2, 4, t + 1, 8]);
        expect(v.shape).toEqual([2, 4, t + 1, 8]);
        assertClose(out.logits.toArray(), positions(full.logits, t, t + 1), TOL, `t=${t}`);
      }
    });
    m.dispose();
  });

  it('a chunked prefill (T > 1 after a cache) equals the full forward', () => {
    const m = tinyModel(2);
    const rows = randomRows(3, 14, 53, 9);
    nb.noGrad(() => {
      const full = nb.keep(m.forward(ids(rows)).logits);
      let out = m.forward(ids(rows.map((r) => r.slice(0, 4))));
      for (const [a, b] of [
        [4, 9],
        [9, 10],
        [10, 14],
      ]) {
        out = m.forward(ids(rows.map((r) => r.slice(a, b))), { pastKeyValues: out.pastKeyValues });
        assertClose(out.logits.toArray(), positions(full, a, b), TOL, `chunk ${a}..${b}`);
      }
      full.dispose();
    });
    m.dispose();
  });

  it('the cache carries gradients like the full forward (loss on the last chunk)', () => {
    const m = tinyModel(3); // eval: dropout off, gradients on
    const rows = randomRows(1, 8, 53, 4);
    const target = nb.tensor(Int32Array.from([7, 9, 11]), { shape: [3] });
    const full = m.forward(ids(rows)).logits.narrow(1, 5, 3).reshape([3, 53]);
    nn.functional.crossEntropy(full, target).backward();
    const want = m.parameters().map((p) => p.grad!.toArray());
    m.zeroGrad();
    const pre = m.forward(ids(rows.map((r) => r.slice(0, 5))));
    const last = m.forward(ids(rows.map((r) => r.slice(5))), { pastKeyValues: pre.pastKeyValues });
    nn.functional.crossEntropy(last.logits.reshape([3, 53]), target).backward();
    m.parameters().forEach((p, i) =>
      assertClose(p.grad!.toArray(), want[i], { rtol: 1e-4, atol: 1e-6 }, `param ${i}`),
    );
    m.dispose();
  });

  it('left padding with attentionMask and positionIds equals the unpadded row', () => {
    const m = tinyModel(4);
    const row = [3, 14, 15, 9, 26];
    nb.noGrad(() => {
      const alone = m.forward(ids([row])).logits;
      const padded = m.forward(ids([[0, 0, ...row]]), {
        attentionMask: ids([[0, 0, 1, 1, 1, 1, 1]]),
        positionIds: ids([[0, 0, 0, 1, 2, 3, 4]]),
      }).logits;
      expect(Array.from(padded.toArray()).every(Number.isFinite)).toBe(true);
      assertClose(positions(padded, 2, 7), alone.toArray(), TOL);
    });
    m.dispose();
  });

  it('rejects a cache that does not fit', () => {
    const m = tinyModel(5);
    nb.noGrad(() => {
      const out = m.forward(ids([[1, 2, 3]]));
      expect(() => m.forward(ids([[4], [5]]), { pastKeyValues: out.pastKeyValues })).toThrow(
        /pastKeyValues\[0\] holds \[1, 4, 3, 8\]; expected \[2, 4, 3, 8\]/,
      );
      expect(() => m.forward(ids([[4]]), { pastKeyValues: out.pastKeyValues!.slice(1) })).toThrow(
        nb.ValueError,
      );
      expect(() =>
        m.forward(ids([[4, 5]]), {
          pastKeyValues: out.pastKeyValues,
          attentionMask: ids([[1, 1]]),
        }),
      ).toThrow(/attentionMask int32 \[1, 2\] must be int32 or float32 \[1, 5\]/);
    });
    m.dispose();
  });
});

/** float64 reference of the kept token set of one row. */
function keptRef(row: number[], t: number, k: number | null, p: number | null): Set<number> {
  const x = row.map((v) => v / t);
  let keep = x.map((_, i) => i);
  if (k !== null) {
    const kth = [...x].sort((a, b) => b - a)[k - 1];
    keep = keep.filter((i) => x[i] >= kth);
  }
  if (p !== null) {
    const order = [...keep].sort((a, b) => x[b] - x[a]);
    const mx = x[order[0]];
    const z = order.reduce((s, i) => s + Math.exp(x[i] - mx), 0);
    let before = 0;
    const kept: number[] = [];
    for (const i of order) {
      if (before >= p) break;
      kept.push(i);
      before += Math.exp(x[i] - mx) / z;
    }
    keep = kept;
  }
  return new Set(keep);
}

function keptOf(filtered: Float32Array, V: number, b: number): Set<number> {
  const s = new Set<number>();
  for (let i = 0; i < V; i++) if (filtered[b * V + i] !== -Infinity) s.add(i);
  return s;
}

describe('sampling', () => {
  const B = 4;
  const V = 40;
  const rows = (): number[][] => {
    nb.manualSeed(31);
    const a = Array.from(nb.randn([B, V]).mul(2).toArray());
    return Array.from({ length: B }, (_, b) => a.slice(b * V, (b + 1) * V));
  };

  it('top-k, top-p and temperature keep exactly the reference token sets', () => {
    const r = rows();
    const x = nb.tensor(Float32Array.from(r.flat()), { shape: [B, V] });
    const cases: [number, number | null, number | null][] = [
      [1, 5, null],
      [1, 1, null],
      [1, null, 0.5],
      [1, null, 0.9],
      [0.7, null, 0.8],
      [2, 10, 0.6],
      [1, null, 1e-9],
      [1, 40, 1],
    ];
    for (const [t, k, p] of cases) {
      const f = nn.filterLogits(x, { temperature: t, topK: k, topP: p }).toArray() as Float32Array;
      for (let b = 0; b < B; b++) {
        const want = keptRef(r[b], t, k, p);
        expect(
          [...keptOf(f, V, b)].sort((a, c) => a - c),
          `t=${t} k=${k} p=${p} row ${b}`,
        ).toEqual([...want].sort((a, c) => a - c));
        for (const i of want) expect(f[b * V + i]).toBeCloseTo(Math.fround(r[b][i]) / t, 5);
      }
    }
    // A tiny topP keeps one token: the argmax.
    const one = nn.filterLogits(x, { topP: 1e-9 }).toArray();
    const am = x.argmax(-1).toArray();
    for (let b = 0; b < B; b++) expect(keptOf(one as Float32Array, V, b)).toEqual(new Set([am[b]]));
  });

  it('draws follow the filtered distribution and never a removed token', () => {
    const probs = [0.4, 0.25, 0.15, 0.1, 0.06, 0.04];
    const N = 20000;
    const logits = nb.tensor(
      Float32Array.from({ length: N * 6 }, (_, i) => Math.log(probs[i % 6])),
      {
        shape: [N, 6],
      },
    );
    nb.manualSeed(9);
    // top-p 0.7: 0.4 + 0.25 = 0.65 < 0.7, so the third token joins; the rest go.
    const draws = nn.sampleLogits(logits, { topP: 0.7 }).toArray();
    const counts = new Array<number>(6).fill(0);
    for (const d of draws) counts[d]++;
    expect(counts.slice(3)).toEqual([0, 0, 0]);
    const z = 0.8;
    for (let i = 0; i < 3; i++) {
      const q = probs[i] / z;
      const sd = Math.sqrt(N * q * (1 - q));
      expect(Math.abs(counts[i] - N * q)).toBeLessThan(4.5 * sd);
    }
    // temperature 2 flattens: probabilities ∝ p^(1/2).
    nb.manualSeed(10);
    const flat = nn.sampleLogits(logits, { temperature: 2, topK: 4 }).toArray();
    const c2 = new Array<number>(6).fill(0);
    for (const d of flat) c2[d]++;
    const w = probs.slice(0, 4).map(Math.sqrt);
    const wz = w.reduce((a, b) => a + b, 0);
    expect(c2.slice(4)).toEqual([0, 0]);
    for (let i = 0; i < 4; i++) {
      const q = w[i] / wz;
      expect(Math.abs(c2[i] - N * q)).toBeLessThan(4.5 * Math.sqrt(N * q * (1 - q)));
    }
  });

  it('greedy picks the argmax; bad options are typed errors', () => {
    const x = nb.tensor([0.1, 3, -1, 2.9, 0, 5, 1, 4.9], { shape: [2, 4] });
    expect(Array.from(nn.sampleLogits(x, { doSample: false }).toArray())).toEqual([1, 1]);
    expect(Array.from(nn.sampleLogits(x, { temperature: 0 }).toArray())).toEqual([1, 1]);
    expect(() => nn.sampleLogits(x, { topP: 0 })).toThrow(/topP must be in \(0, 1\]/);
    expect(() => nn.filterLogits(x, { topK: 0 })).toThrow(/topK must be a positive integer/);
    expect(() => nn.sampleLogits(x, { temperature: -1 })).toThrow(nb.ValueError);
    expect(() => nn.sampleLogits(nb.zeros([4]))).toThrow(nb.ShapeError);
  });
});

describe('generate', () => {
  it('greedy equals the argmax of full forwards, with and without the cache', () => {
    const m = tinyModel(6);
    const prompt = randomRows(2, 5, 53, 17);
    const rows = prompt.map((r) => [...r]);
    nb.noGrad(() => {
      for (let s = 0; s < 10; s++) {
        const logits = m.forward(ids(rows), { useCache: false }).logits;
        const L = rows[0].length;
        const next = logits
          .narrow(1, L - 1, 1)
          .reshape([2, 53])
          .argmax(-1)
          .toArray();
        rows.forEach((r, b) => r.push(next[b]));
      }
    });
    const out = m.generate(ids(prompt), { maxNewTokens: 10, doSample: false });
    expect(out.shape).toEqual([2, 15]);
    expect(Array.from(out.toArray())).toEqual(rows.flat());
    const noCache = m.generate(ids(prompt), { maxNewTokens: 10, doSample: false, useCache: false });
    expect(Array.from(noCache.toArray())).toEqual(rows.flat());
    m.dispose();
  });

  it('a left-padded batch with attentionMask generates what each prompt does alone', () => {
    const m = tinyModel(9);
    const [a, b] = [randomRows(1, 7, 53, 21)[0], randomRows(1, 3, 53, 22)[0]];
    const opts = { maxNewTokens: 12, doSample: false };
    const aloneA = Array.from(m.generate(ids([a]), opts).toArray()).slice(7);
    const aloneB = Array.from(m.generate(ids([b]), opts).toArray()).slice(3);
    const batch = ids([a, [50, 50, 50, 50, ...b]]);
    const attentionMask = ids([Array(7).fill(1), [0, 0, 0, 0, 1, 1, 1]]);
    for (const useCache of [true, false]) {
      const out = Array.from(m.generate(batch, { ...opts, attentionMask, useCache }).toArray());
      expect(out.slice(7, 19)).toEqual(aloneA);
      expect(out.slice(26, 38)).toEqual(aloneB);
    }
    // Without the mask the padded row reads the padding and its continuation changes.
    const unmasked = Array.from(m.generate(batch, opts).toArray());
    expect(unmasked.slice(26, 38)).not.toEqual(aloneB);
    expect(() => m.generate(batch, { ...opts, attentionMask: ids([[1, 1]]) })).toThrow(
      /attentionMask int32 \[1, 2\] must be int32 \[2, 7\]/,
    );
    expect(() =>
      m.generate(batch, { ...opts, attentionMask: ids([Array(7).fill(1), Array(7).fill(0)]) }),
    ).toThrow(/row 1 has no token/);
    m.dispose();
  });

  it('seeded sampling is reproducible and leaves the global RNG where it was', () => {
    const m = tinyModel(7);
    const prompt = ids([[1, 2, 3]]);
    nb.manualSeed(123);
    const state = nb.getRngState();
    const opts = { maxNewTokens: 30, topK: 20, topP: 0.95, temperature: 1.5, seed: 7 };
    const a = Array.from(m.generate(prompt, opts).toArray());
    const b = Array.from(m.generate(prompt, opts).toArray());
    const c = Array.from(m.generate(prompt, { ...opts, seed: 8 }).toArray());
    expect(a).toEqual(b);
    expect(c).not.toEqual(a);
    expect(nb.getRngState()).toEqual(state);
    m.dispose();
  });

  it('stops at eos and pads finished rows', () => {
    const m = tinyModel(8);
    const prompt = randomRows(2, 4, 53, 3);
    const greedy = Array.from(
      m.generate(ids(prompt), { maxNewTokens: 6, doSample: false }).toArray(),
    );
    const row0 = greedy.slice(0, 10);
    const row1 = greedy.slice(10);
    const eos = row0[5]; // row 0's second new token
    const out = m.generate(ids(prompt), {
      maxNewTokens: 6,
      doSample: false,
      eosTokenId: eos,
      padTokenId: 0,
    });
    const firstEos = (r: number[]): number => r.slice(4).indexOf(eos);
    const got = Array.from(out.toArray());
    const W = out.shape[1];
    const r0 = got.slice(0, W);
    const r1 = got.slice(W);
    // Row 0 ends at its first eos; the call stops once both rows ended, or at 6 new tokens.
    const e0 = firstEos(row0);
    expect(r0.slice(0, 4 + e0 + 1)).toEqual(row0.slice(0, 4 + e0 + 1));
    expect(r0.slice(4 + e0 + 1).every((v) => v === 0)).toBe(true);
    const e1 = firstEos(row1);
    expect(W).toBe(e1 < 0 ? 10 : 4 + Math.max(e0, e1) + 1);
    const end1 = e1 < 0 ? W : 4 + e1 + 1;
    expect(r1.slice(0, end1)).toEqual(row1.slice(0, end1));
    expect(r1.slice(end1).every((v) => v === 0)).toBe(true);
    m.dispose();
  });

  it('a plain loop of generate calls reuses its prompt and keeps the heap flat', () => {
    const m = tinyModel(10);
    const prompt = ids([[5, 6, 7]]);
    const live: number[] = [];
    for (let i = 0; i < 30; i++) {
      const out = m.generate(prompt, { maxNewTokens: 5, seed: i }); // no dispose, as in PyTorch
      expect(out.shape).toEqual([1, 8]);
      live.push(nb.memory().tensors);
    }
    expect(Math.max(...live.slice(10))).toBe(Math.min(...live.slice(10)));
    m.dispose();
  });

  it('keeps the heap flat over a 200-token generation', () => {
    const m = tinyModel(9, { nPositions: 256 });
    const prompt = ids([[5, 6, 7, 8]]);
    m.generate(prompt, { maxNewTokens: 200, seed: 1 }).dispose(); // warm the allocator
    const warm = nb.memory();
    const out = m.generate(prompt, { maxNewTokens: 200, seed: 1 });
    expect(out.shape).toEqual([1, 204]);
    out.dispose();
    const after = nb.memory();
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
    m.dispose();
  });

  it('rejects prompts that do not fit', () => {
    const m = tinyModel(10, { nPositions: 8 });
    expect(() => m.generate(ids([[1, 2, 3]]), { maxNewTokens: 6 })).toThrow(/exceed nPositions 8/);
    expect(() => m.generate(nb.zeros([1, 3]))).toThrow(nb.DTypeError);
    expect(() => m.generate(ids([[1]]), { maxNewTokens: -1 })).toThrow(nb.ValueError);
    m.dispose();
  });
});
