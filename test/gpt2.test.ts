// nn.GPT2LMHeadModel against a PyTorch GPT-2 written from HF's architecture
// (scripts/fixtures/make_gpt2_fixtures.py): strict loads of HF-format files (with the old
// attention-mask buffers, without the tied lm_head, base-model files), logits, loss and every
// parameter's gradient, torch's state-dict names and shapes, torch loading nabla's file, HF's
// initialisation, a 30-step AdamW trajectory, and typed errors.
//
// Tolerances: logits and loss rtol 1e-5 (atol 1e-5 for logits near zero); gradients rtol 1e-5
// with atol 1e-5 · max|g| of the tensor (float32 sums of many terms cancel near zero); the
// trajectory's losses rtol 1e-4 (torch ran in float64, nabla in float32, through 30 Adam steps).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn, Tensor } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface ConfigCase {
  config: Record<string, unknown>;
  ids: number[][];
  labels: number[][];
  loss: number;
  stateDictShapes: [string, number[]][];
  params: string[];
}
interface Fixture {
  a: ConfigCase;
  b: ConfigCase;
  trajectory: { lr: number; weightDecay: number; batches: number[][][]; losses: number[] };
  fromNabla: { ids: number[][]; keys: string[]; logits: number[] };
}

const dir = new URL('./fixtures/', import.meta.url);
const fx = JSON.parse(readFileSync(new URL('gpt2.json', dir), 'utf8')) as Fixture;
const bytes = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, dir)));
let refs: Record<string, Tensor>;
beforeAll(() => {
  refs = nb.io.loadSafetensors(bytes('gpt2_ref.safetensors'));
  for (const t of Object.values(refs)) nb.keep(t);
});

const ids2d = (rows: number[][]): Tensor =>
  nb.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

describe('GPT2Config', () => {
  it("has HF's defaults and reads a config.json", () => {
    const c = new nn.GPT2Config();
    expect([c.vocabSize, c.nPositions, c.nEmbd, c.nLayer, c.nHead, c.nInner]).toEqual([
      50257,
      1024,
      768,
      12,
      12,
      null,
    ]);
    expect(c.innerDim).toBe(3072);
    expect([c.activationFunction, c.residPdrop, c.embdPdrop, c.attnPdrop]).toEqual([
      'gelu_new',
      0.1,
      0.1,
      0.1,
    ]);
    expect([
      c.layerNormEpsilon,
      c.initializerRange,
      c.scaleAttnWeights,
      c.tieWordEmbeddings,
    ]).toEqual([1e-5, 0.02, true, true]);
    const j = nn.GPT2Config.fromJSON({
      architectures: ['GPT2LMHeadModel'],
      vocab_size: 61,
      n_embd: 24,
      n_head: 3,
      n_inner: 40,
      activation_function: 'gelu',
      tie_word_embeddings: false,
      bos_token_id: 50256,
    });
    expect([j.vocabSize, j.nEmbd, j.nHead, j.innerDim, j.activationFunction]).toEqual([
      61,
      24,
      3,
      40,
      'gelu',
    ]);
    expect(j.tieWordEmbeddings).toBe(false);
    expect(nn.GPT2Config.fromJSON(j.toJSON())).toEqual(j);
  });

  it('rejects bad values with typed errors', () => {
    expect(() => new nn.GPT2Config({ nEmbd: 30, nHead: 4 })).toThrow(nb.ValueError);
    expect(() => new nn.GPT2Config({ nLayer: 0 })).toThrow(/nLayer must be a positive integer/);
    expect(() => new nn.GPT2Config({ activationFunction: 'swish' as never })).toThrow(
      /activationFunction/,
    );
    expect(() => new nn.GPT2Config({ attnPdrop: 1 })).toThrow(/attnPdrop/);
  });
});

describe('GPT2LMHeadModel against PyTorch', () => {
  for (const name of ['a', 'b'] as const) {
    it(`config ${name}: names and shapes of the state dict are torch's`, () => {
      const model = new nn.GPT2LMHeadModel(nn.GPT2Config.fromJSON(fx[name].config));
      const sd = model.stateDict();
      expect(Object.entries(sd).map(([k, t]) => [k, t.shape])).toEqual(fx[name].stateDictShapes);
      expect(model.namedParameters().map(([k]) => k)).toEqual(fx[name].params);
      model.dispose();
    });

    it(`config ${name}: logits, loss and every gradient after a strict HF load`, () => {
      const model = nn.GPT2LMHeadModel.fromSafetensors(
        bytes(`gpt2_${name}.safetensors`),
        nn.GPT2Config.fromJSON(fx[name].config),
      );
      const { logits, loss, pastKeyValues } = model.forward(ids2d(fx[name].ids), {
        labels: ids2d(fx[name].labels),
      });
      assertClose(
        logits.toArray(),
        refs[`${name}.logits`].toArray(),
        { rtol: 1e-5, atol: 1e-5 },
        'logits',
      );
      assertClose([loss!.item()], [fx[name].loss], { rtol: 1e-5, atol: 0 }, 'loss');
      expect(pastKeyValues!.length).toBe(model.config.nLayer);
      loss!.backward();
      for (const [k, p] of model.namedParameters()) {
        const want = refs[`${name}.grad.${k}`].toArray();
        assertClose(p.grad!.toArray(), want, { rtol: 1e-5, atol: 1e-5 * maxAbs(want) }, k);
      }
      model.dispose();
    });
  }

  it('loads HF files with or without lm_head, and base-model (GPT2Model) files', () => {
    const config = nn.GPT2Config.fromJSON(fx.a.config);
    const file = nb.io.loadSafetensors(bytes('gpt2_a.safetensors'));
    expect(Object.keys(file)).toContain('transformer.h.0.attn.masked_bias');
    expect(Object.keys(file)).not.toContain('lm_head.weight');
    const want = refs['a.logits'].toArray();
    const check = (m: nn.GPT2LMHeadModel): void =>
      assertClose(m.forward(ids2d(fx.a.ids)).logits.toArray(), want, { rtol: 1e-5, atol: 1e-5 });
    // With lm_head.weight (equal to wte, as torch's state_dict() writes a tied model).
    const m1 = new nn.GPT2LMHeadModel(config);
    m1.loadHuggingFace({ ...file, 'lm_head.weight': file['transformer.wte.weight'] });
    check(m1);
    // A GPT2Model file: no `transformer.` prefix, no head.
    const base: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(file)) base[k.replace(/^transformer\./, '')] = t;
    const m2 = new nn.GPT2LMHeadModel(config);
    m2.loadHuggingFace(base);
    check(m2);
    const bm = nn.GPT2Model.fromSafetensors(nb.io.saveSafetensors(base), config);
    const hidden = bm.forward(ids2d(fx.a.ids)).lastHiddenState;
    const viaHead = m2.transformer.forward(ids2d(fx.a.ids)).lastHiddenState;
    assertClose(hidden.toArray(), viaHead.toArray(), { rtol: 0, atol: 0 });
    // An LM file into the base model drops the head.
    const bm2 = new nn.GPT2Model(config);
    bm2.loadHuggingFace(file);
    assertClose(bm2.forward(ids2d(fx.a.ids)).lastHiddenState.toArray(), viaHead.toArray(), {
      rtol: 0,
      atol: 0,
    });
    // A plain strict loadStateDict still refuses the buffers: only loadHuggingFace drops them.
    const m3 = new nn.GPT2LMHeadModel(config);
    expect(() => m3.loadStateDict(file)).toThrow(/unexpected keys \[transformer\.h\.0\.attn\.bias/);
    for (const m of [m1, m2, m3]) m.dispose();
    bm.dispose();
    bm2.dispose();
  });

  it('a failed HF load is a typed error and leaves the model unchanged', () => {
    const configB = nn.GPT2Config.fromJSON(fx.b.config);
    const file = nb.io.loadSafetensors(bytes('gpt2_b.safetensors'));
    const m = new nn.GPT2LMHeadModel(configB);
    const before = m.lm_head.weight.toArray();
    const noHead = { ...file };
    delete noHead['lm_head.weight'];
    expect(() => m.loadHuggingFace(noHead)).toThrow(/missing keys \[lm_head\.weight\]/);
    expect(() =>
      m.loadHuggingFace({ ...file, 'transformer.h.0.attn.c_attn.extra': file['lm_head.weight'] }),
    ).toThrow(/unexpected keys \[transformer\.h\.0\.attn\.c_attn\.extra\]/);
    const configA = nn.GPT2Config.fromJSON(fx.a.config);
    expect(() => nn.GPT2LMHeadModel.fromSafetensors(bytes('gpt2_b.safetensors'), configA)).toThrow(
      nb.ShapeError,
    );
    expect(Array.from(m.lm_head.weight.toArray())).toEqual(Array.from(before));
    m.dispose();
  });

  it("torch loads nabla's file strictly and computes the same logits", () => {
    const file = nb.io.loadSafetensors(bytes('gpt2_nabla_state.safetensors'));
    expect(Object.keys(file).sort()).toEqual(fx.fromNabla.keys);
    expect(Object.keys(file)).toContain('lm_head.weight');
    const m = new nn.GPT2LMHeadModel(nn.GPT2Config.fromJSON(fx.a.config));
    m.loadStateDict(file);
    const logits = m.forward(ids2d(fx.fromNabla.ids)).logits;
    assertClose(logits.toArray(), fx.fromNabla.logits, { rtol: 1e-5, atol: 1e-5 });
    m.dispose();
  });

  it('a 30-step AdamW trajectory matches PyTorch losses to 1e-4', () => {
    const t = fx.trajectory;
    const model = nn.GPT2LMHeadModel.fromSafetensors(
      bytes('gpt2_a.safetensors'),
      nn.GPT2Config.fromJSON(fx.a.config),
    );
    const opt = new nb.optim.AdamW(model.parameters(), { lr: t.lr, weightDecay: t.weightDecay });
    const losses: number[] = [];
    for (const batch of t.batches) {
      nb.tidy(() => {
        const ids = ids2d(batch);
        const { loss } = model.forward(ids, { labels: ids, useCache: false });
        opt.zeroGrad();
        loss!.backward();
        opt.step();
        losses.push(loss!.item());
      });
    }
    assertClose(losses, t.losses, { rtol: 1e-4, atol: 0 }, 'losses');
    expect(losses[29]).toBeLessThan(losses[0] - 1);
    model.dispose();
  });
});

describe('GPT2 modules', () => {
  it("initialises like HF's _init_weights", () => {
    nb.manualSeed(11);
    const m = new nn.GPT2LMHeadModel({
      vocabSize: 300,
      nPositions: 64,
      nEmbd: 64,
      nLayer: 3,
      nHead: 4,
    });
    const std = (t: Tensor): number => {
      const a = Array.from(t.toArray());
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      return Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    };
    const sd = m.stateDict();
    expect(m.lm_head.weight).toBe(m.transformer.wte.weight);
    for (const [k, t] of Object.entries(sd)) {
      const a = t.toArray();
      if (k.endsWith('c_proj.weight')) expect(std(t)).toBeCloseTo(0.02 / Math.sqrt(6), 3);
      else if (/ln_.*weight$/.test(k)) expect(a.every((v) => v === 1)).toBe(true);
      else if (k.endsWith('bias')) expect(a.every((v) => v === 0)).toBe(true);
      else expect(std(t)).toBeCloseTo(0.02, 3);
    }
    const untied = new nn.GPT2LMHeadModel({
      vocabSize: 300,
      nPositions: 8,
      nEmbd: 64,
      nLayer: 1,
      nHead: 4,
      tieWordEmbeddings: false,
    });
    expect(untied.lm_head.weight).not.toBe(untied.transformer.wte.weight);
    expect(std(untied.lm_head.weight)).toBeCloseTo(0.02, 3);
    expect([m.parameters().length, untied.parameters().length]).toEqual([40, 17]);
    m.dispose();
    untied.dispose();
  });

  it('Conv1D is x · W + b with W [in, out]', () => {
    const c = new nn.Conv1D(3, 2);
    expect(c.weight.shape).toEqual([2, 3]);
    nb.noGrad(() => {
      c.weight.copy_(nb.tensor([1, 2, 3, 4, 5, 6], { shape: [2, 3] }));
      c.bias.copy_(nb.tensor([0.5, -1, 2]));
    });
    const y = c.forward(nb.tensor([1, -1, 2, 0.5], { shape: [2, 2] }));
    expect(Array.from(y.toArray())).toEqual([-2.5, -4, -1, 4.5, 5.5, 11]);
    expect(c.toString()).toBe('Conv1D(nf=3, nx=2)');
    expect(() => c.forward(nb.zeros([2, 3]))).toThrow(nb.ShapeError);
  });

  it('rejects bad inputs with typed errors', () => {
    const m = new nn.GPT2LMHeadModel({
      vocabSize: 11,
      nPositions: 8,
      nEmbd: 8,
      nLayer: 1,
      nHead: 2,
    });
    expect(() => m.forward(nb.zeros([1, 4]))).toThrow(nb.DTypeError);
    expect(() => m.forward(nb.zeros([4], { dtype: 'int32' }))).toThrow(/must be \[batch, seq\]/);
    expect(() => m.forward(nb.zeros([1, 9], { dtype: 'int32' }))).toThrow(/exceed nPositions 8/);
    expect(() => m.forward(nb.full([1, 3], 11, { dtype: 'int32' }))).toThrow();
    expect(() =>
      m.forward(nb.zeros([1, 3], { dtype: 'int32' }), {
        labels: nb.zeros([1, 2], { dtype: 'int32' }),
      }),
    ).toThrow(/labels int32 \[1, 2\] must be int32 \[1, 3\]/);
    m.dispose();
  });
});

describe('GPT2Model under noGrad', () => {
  it("frees each block's intermediates as it goes, keeping the key/value cache", () => {
    nb.manualSeed(13);
    const m = new nn.GPT2LMHeadModel({
      vocabSize: 97,
      nPositions: 64,
      nEmbd: 48,
      nLayer: 4,
      nHead: 4,
    });
    m.eval();
    const ids = nb.keep(nb.randint(0, 97, [6, 40], { dtype: 'int32' }));
    const next = nb.keep(nb.randint(0, 97, [6, 1], { dtype: 'int32' }));
    // Reference: the grad-mode pass over all 41 tokens, and its last position.
    const all = nb.cat([ids, next], 1);
    const ref = m.forward(all).logits;
    const [B, T1, V] = ref.shape;
    const wantPrefix = Array.from(ref.narrow(1, 0, T1 - 1).toArray());
    const wantLast = Array.from(ref.narrow(1, T1 - 1, 1).toArray());
    const pass = () => {
      nb.resetPeakMemory();
      const base = nb.memory().bytes;
      const r = nb.noGrad(() =>
        nb.tidy(() => {
          const first = m.forward(ids);
          const second = m.forward(next, { pastKeyValues: first.pastKeyValues });
          return [Array.from(first.logits.toArray()), Array.from(second.logits.toArray())];
        }),
      );
      return { prefix: r[0], last: r[1], bytes: nb.memory().peakBytes - base };
    };
    const freed = pass();
    assertClose(freed.prefix, wantPrefix, { rtol: 1e-5, atol: 1e-5 }, 'prefix logits');
    assertClose(freed.last, wantLast, { rtol: 1e-5, atol: 1e-5 }, 'cached step logits');
    expect(freed.last.length).toBe(B * V);
    const handle = m.transformer.h[2].mlp.registerForwardHook(() => undefined);
    const hooked = pass();
    expect(hooked.prefix).toEqual(freed.prefix);
    expect(hooked.last).toEqual(freed.last);
    expect(freed.bytes).toBeLessThan(0.6 * hooked.bytes);
    handle.remove();
    for (const t of [ids, next, all, ref]) t.dispose();
    m.dispose();
  });
});
