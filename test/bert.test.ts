// nn.BertModel / BertForMaskedLM / BertForSequenceClassification against a PyTorch BERT written
// from HF's architecture (scripts/fixtures/make_bert_fixtures.py), two configs: last hidden
// state and pooler, both heads' logits, losses and every parameter's gradient, after strict
// loads of HF-layout files (base files with the old position_ids buffer, MLM files with and
// without decoder.bias, classification files); torch's state-dict names and shapes; torch
// loading nabla's files; the shared HF loader's layouts; maskTokens; typed errors.
//
// Tolerances as test/gpt2.test.ts: outputs rtol 1e-5 (atol 1e-5 near zero), gradients rtol
// 1e-5 with atol 1e-5 · max|g| of the tensor; torch ran in float64, nabla in float32.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn, Tensor } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface HeadCase {
  loss: number;
  stateDictShapes: [string, number[]][];
  params: string[];
}
interface ConfigCase {
  config: Record<string, unknown>;
  ids: number[][];
  tokenTypeIds: number[][];
  attentionMask: number[][];
  mlmLabels: number[][];
  clsLabels: number[];
  baseShapes: [string, number[]][];
  mlm: HeadCase;
  cls: HeadCase;
}
interface Fixture {
  a: ConfigCase;
  b: ConfigCase;
  fromNabla: {
    ids: number[][];
    attentionMask: number[][];
    tokenTypeIds: number[][];
    mlm: { keys: string[]; logits: number[] };
    cls: { keys: string[]; logits: number[] };
  };
}

const dir = new URL('./fixtures/', import.meta.url);
const fx = JSON.parse(readFileSync(new URL('bert.json', dir), 'utf8')) as Fixture;
const bytes = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, dir)));
let refs: Record<string, Tensor>;
beforeAll(() => {
  refs = nb.io.loadSafetensors(bytes('bert_ref.safetensors'));
  for (const t of Object.values(refs)) nb.keep(t);
});

const int2d = (rows: number[][]): Tensor =>
  nb.tensor(Int32Array.from(rows.flat()), { shape: [rows.length, rows[0].length] });

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

const inputs = (c: ConfigCase): nn.BertForwardOptions & { ids: Tensor } => ({
  ids: int2d(c.ids),
  attentionMask: int2d(c.attentionMask),
  tokenTypeIds: int2d(c.tokenTypeIds),
});

function clsLabels(c: ConfigCase, cfg: nn.BertConfig): Tensor {
  return cfg.numLabels === 1
    ? nb.tensor(Float32Array.from(c.clsLabels))
    : nb.tensor(Int32Array.from(c.clsLabels));
}

describe('BertConfig', () => {
  it("has HF's defaults and reads a config.json", () => {
    const c = new nn.BertConfig();
    expect([
      c.vocabSize,
      c.hiddenSize,
      c.numHiddenLayers,
      c.numAttentionHeads,
      c.intermediateSize,
      c.hiddenAct,
    ]).toEqual([30522, 768, 12, 12, 3072, 'gelu']);
    expect([
      c.hiddenDropoutProb,
      c.attentionProbsDropoutProb,
      c.maxPositionEmbeddings,
      c.typeVocabSize,
      c.layerNormEps,
      c.padTokenId,
      c.initializerRange,
      c.numLabels,
      c.classifierDropout,
      c.tieWordEmbeddings,
    ]).toEqual([0.1, 0.1, 512, 2, 1e-12, 0, 0.02, 2, null, true]);
    const j = nn.BertConfig.fromJSON({
      architectures: ['BertForSequenceClassification'],
      model_type: 'bert',
      vocab_size: 100,
      hidden_size: 24,
      num_attention_heads: 3,
      intermediate_size: 40,
      hidden_act: 'gelu_new',
      type_vocab_size: 3,
      id2label: { 0: 'ham', 1: 'spam', 2: 'other' },
      classifier_dropout: 0.2,
      position_embedding_type: 'absolute',
    });
    expect([j.vocabSize, j.hiddenSize, j.headDim, j.intermediateSize, j.hiddenAct]).toEqual([
      100,
      24,
      8,
      40,
      'gelu_new',
    ]);
    expect([j.typeVocabSize, j.numLabels, j.classifierDropout]).toEqual([3, 3, 0.2]);
    expect(nn.BertConfig.fromJSON(j.toJSON())).toEqual(j);
  });

  it('rejects bad values with typed errors', () => {
    expect(() => new nn.BertConfig({ hiddenSize: 30, numAttentionHeads: 4 })).toThrow(
      nb.ValueError,
    );
    expect(() => new nn.BertConfig({ numHiddenLayers: 0 })).toThrow(/numHiddenLayers/);
    expect(() => new nn.BertConfig({ hiddenAct: 'swish' as never })).toThrow(/hiddenAct/);
    expect(() => new nn.BertConfig({ hiddenDropoutProb: 1 })).toThrow(/hiddenDropoutProb/);
    expect(() => new nn.BertConfig({ vocabSize: 5, padTokenId: 5 })).toThrow(/padTokenId/);
  });
});

describe('BERT against PyTorch', () => {
  for (const name of ['a', 'b'] as const) {
    const c = fx[name];
    const config = (): nn.BertConfig => nn.BertConfig.fromJSON(c.config);

    it(`config ${name}: state-dict names, shapes and parameters are torch's for every head`, () => {
      const base = new nn.BertModel(config());
      expect(Object.entries(base.stateDict()).map(([k, t]) => [k, t.shape])).toEqual(c.baseShapes);
      for (const [head, M] of [
        ['mlm', nn.BertForMaskedLM],
        ['cls', nn.BertForSequenceClassification],
      ] as const) {
        const m = new M(config());
        expect(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape])).toEqual(
          c[head].stateDictShapes,
        );
        expect(m.namedParameters().map(([k]) => k)).toEqual(c[head].params);
        m.dispose();
      }
      base.dispose();
    });

    it(`config ${name}: BertModel's last hidden state and pooler from a base file`, () => {
      const m = nn.BertModel.fromSafetensors(bytes(`bert_${name}_base.safetensors`), config());
      const { ids, ...opts } = inputs(c);
      const out = m.forward(ids, opts);
      assertClose(out.lastHiddenState.toArray(), refs[`${name}.last`].toArray(), {
        rtol: 1e-5,
        atol: 1e-5,
      });
      assertClose(out.poolerOutput!.toArray(), refs[`${name}.pooler`].toArray(), {
        rtol: 1e-5,
        atol: 1e-5,
      });
      m.dispose();
    });

    for (const [head, M] of [
      ['mlm', nn.BertForMaskedLM],
      ['cls', nn.BertForSequenceClassification],
    ] as const) {
      it(`config ${name}: ${head} logits, loss and every gradient after a strict HF load`, () => {
        const cfg = config();
        const m = M.fromSafetensors(bytes(`bert_${name}_${head}.safetensors`), cfg);
        const { ids, ...opts } = inputs(c);
        const labels = head === 'mlm' ? int2d(c.mlmLabels) : clsLabels(c, cfg);
        const { logits, loss } = m.forward(ids, { ...opts, labels });
        assertClose(
          logits.toArray(),
          refs[`${name}.${head}.logits`].toArray(),
          { rtol: 1e-5, atol: 1e-5 },
          'logits',
        );
        assertClose([loss!.item()], [c[head].loss], { rtol: 1e-5, atol: 0 }, 'loss');
        loss!.backward();
        const params = m.namedParameters();
        expect(params.length).toBe(c[head].params.length);
        for (const [k, p] of params) {
          const want = refs[`${name}.${head}.grad.${k}`].toArray();
          const got = p.grad!.toArray();
          // The key bias shifts every score of a query equally, so softmax cancels it: its
          // gradient is zero in exact arithmetic (torch's float64 gives ~1e-18).
          if (k.endsWith('attention.self.key.bias')) expect(maxAbs(got)).toBeLessThan(1e-6);
          else assertClose(got, want, { rtol: 1e-5, atol: 1e-5 * maxAbs(want) }, k);
        }
        m.dispose();
      });
    }
  }

  it("torch loads nabla's files strictly and computes the same logits", () => {
    const f = fx.fromNabla;
    const config = nn.BertConfig.fromJSON(fx.a.config);
    for (const [head, M] of [
      ['mlm', nn.BertForMaskedLM],
      ['cls', nn.BertForSequenceClassification],
    ] as const) {
      const file = nb.io.loadSafetensors(bytes(`bert_nabla_${head}.safetensors`));
      expect(Object.keys(file).sort()).toEqual(f[head].keys);
      const m = new M(config);
      m.loadStateDict(file);
      const logits = m.forward(int2d(f.ids), {
        attentionMask: int2d(f.attentionMask),
        tokenTypeIds: int2d(f.tokenTypeIds),
      }).logits;
      assertClose(logits.toArray(), f[head].logits, { rtol: 1e-5, atol: 1e-5 }, head);
      m.dispose();
    }
    expect(f.mlm.keys).toContain('cls.predictions.decoder.weight');
    expect(f.mlm.keys).toContain('cls.predictions.decoder.bias');
  });
});

describe('loading Hugging Face BERT files', () => {
  const config = (): nn.BertConfig => nn.BertConfig.fromJSON(fx.a.config);

  it('maps base, MLM and classification layouts onto every model', () => {
    const c = fx.a;
    const run = (m: nn.BertModel): Float32Array => {
      const { ids: i, ...o } = inputs(c);
      return m.forward(i, o).lastHiddenState.toArray() as Float32Array;
    };
    const want = refs['a.last'].toArray();
    const tol = { rtol: 1e-5, atol: 1e-5 };
    // A base file into the heads: the base loads, a new head stays at its initialisation.
    const cls = new nn.BertForSequenceClassification(config());
    const before = cls.classifier.weight.toArray();
    const r1 = cls.loadHuggingFace(nb.io.loadSafetensors(bytes('bert_a_base.safetensors')));
    expect(r1.newlyInitialized).toEqual(['classifier.weight', 'classifier.bias']);
    expect(r1.dropped).toEqual(['embeddings.position_ids']);
    expect(Array.from(cls.classifier.weight.toArray())).toEqual(Array.from(before));
    assertClose(run(cls.bert), want, tol);
    // An MLM file into the classifier: cls.* dropped, pooler and classifier new.
    const cls2 = new nn.BertForSequenceClassification(config());
    const r2 = cls2.loadHuggingFace(nb.io.loadSafetensors(bytes('bert_a_mlm.safetensors')));
    expect(r2.newlyInitialized.sort()).toEqual([
      'bert.pooler.dense.bias',
      'bert.pooler.dense.weight',
      'classifier.bias',
      'classifier.weight',
    ]);
    expect(r2.dropped.every((k) => k.startsWith('cls.predictions.'))).toBe(true);
    assertClose(run(cls2.bert), want, tol);
    // Head files into the base model: the head's keys dropped.
    for (const f of ['bert_a_mlm.safetensors', 'bert_a_cls.safetensors']) {
      const base = new nn.BertModel(config());
      base.loadHuggingFace(nb.io.loadSafetensors(bytes(f)));
      assertClose(run(base), want, tol);
      base.dispose();
    }
    // A base file into the MLM model: its pooler dropped, the MLM head new, decoder still tied.
    const mlm = new nn.BertForMaskedLM(config());
    const r3 = mlm.loadHuggingFace(nb.io.loadSafetensors(bytes('bert_a_base.safetensors')));
    expect(r3.newlyInitialized).not.toContain('cls.predictions.decoder.weight');
    expect(r3.dropped).toContain('pooler.dense.weight');
    expect(mlm.cls.predictions.decoder.weight).toBe(mlm.bert.embeddings.word_embeddings.weight);
    expect(mlm.cls.predictions.decoder.bias).toBe(mlm.cls.predictions.bias);
    assertClose(run(mlm.bert), want, tol);
    for (const m of [cls, cls2, mlm]) m.dispose();
  });

  it('a BertForPreTraining-style file (pooler, NSP head) loads into BertForMaskedLM', () => {
    const file = nb.io.loadSafetensors(bytes('bert_a_mlm.safetensors'));
    const cf = nb.io.loadSafetensors(bytes('bert_a_cls.safetensors'));
    const pre: Record<string, Tensor> = {
      ...file,
      'bert.pooler.dense.weight': cf['bert.pooler.dense.weight'],
      'bert.pooler.dense.bias': cf['bert.pooler.dense.bias'],
      'cls.seq_relationship.weight': nb.zeros([2, 32]),
      'cls.seq_relationship.bias': nb.zeros([2]),
      'bert.embeddings.position_ids': nb.zeros([1, 16], { dtype: 'int32' }),
    };
    const m = new nn.BertForMaskedLM(config());
    const r = m.loadHuggingFace(pre);
    expect(r.newlyInitialized).toEqual([]);
    expect(r.dropped.sort()).toEqual([
      'bert.embeddings.position_ids',
      'bert.pooler.dense.bias',
      'bert.pooler.dense.weight',
      'cls.seq_relationship.bias',
      'cls.seq_relationship.weight',
    ]);
    const { ids: i, ...o } = inputs(fx.a);
    assertClose(m.forward(i, o).logits.toArray(), refs['a.mlm.logits'].toArray(), {
      rtol: 1e-5,
      atol: 1e-5,
    });
    m.dispose();
  });

  it('a failed load is a typed error and leaves the model unchanged', () => {
    const m = new nn.BertForMaskedLM(config());
    const before = m.cls.predictions.transform.dense.weight.toArray();
    const file = nb.io.loadSafetensors(bytes('bert_a_mlm.safetensors'));
    const partial = { ...file };
    delete partial['cls.predictions.transform.LayerNorm.bias'];
    expect(() => m.loadHuggingFace(partial)).toThrow(
      /missing keys \[cls\.predictions\.transform\.LayerNorm\.bias\]/,
    );
    const noLayer = { ...file };
    delete noLayer['bert.encoder.layer.1.output.dense.bias'];
    expect(() => m.loadHuggingFace(noLayer)).toThrow(/missing keys/);
    expect(() =>
      nn.BertForMaskedLM.fromSafetensors(
        bytes('bert_b_mlm.safetensors'),
        nn.BertConfig.fromJSON(fx.a.config),
      ),
    ).toThrow(nb.ShapeError);
    const diff = { ...file, 'cls.predictions.decoder.bias': nb.zeros([64]) };
    expect(() => m.loadHuggingFace(diff)).toThrow(/tied parameter/);
    expect(Array.from(m.cls.predictions.transform.dense.weight.toArray())).toEqual(
      Array.from(before),
    );
    m.dispose();
  });
});

const small = {
  vocabSize: 300,
  hiddenSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  intermediateSize: 96,
  maxPositionEmbeddings: 32,
};

describe('BERT modules', () => {
  it("initialises like HF's _init_weights", () => {
    nb.manualSeed(5);
    const m = new nn.BertForSequenceClassification(small);
    const std = (t: Tensor): number => {
      const a = Array.from(t.toArray());
      const mean = a.reduce((s, v) => s + v, 0) / a.length;
      return Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    };
    for (const [k, t] of Object.entries(m.stateDict())) {
      const a = t.toArray();
      if (k.endsWith('LayerNorm.weight')) expect(a.every((v) => v === 1)).toBe(true);
      else if (k.endsWith('bias')) expect(a.every((v) => v === 0)).toBe(true);
      else expect(std(t)).toBeCloseTo(0.02, 2);
    }
    const pad = m.bert.embeddings.word_embeddings.weight.toArray().slice(0, 64);
    expect(Array.from(pad).every((v) => v === 0)).toBe(true);
    const mlm = new nn.BertForMaskedLM({ ...small, tieWordEmbeddings: false });
    expect(mlm.cls.predictions.decoder.weight).not.toBe(mlm.bert.embeddings.word_embeddings.weight);
    expect(mlm.bert.pooler).toBeNull();
    expect(Array.from(mlm.cls.predictions.bias.toArray()).every((v) => v === 0)).toBe(true);
    m.dispose();
    mlm.dispose();
  });

  it('padding: masked keys do not change the unpadded rows', () => {
    nb.manualSeed(6);
    const m = new nn.BertModel(small).eval();
    const short = nb.tensor(Int32Array.from([5, 9, 17, 4]), { shape: [1, 4] });
    const padded = nb.tensor(Int32Array.from([5, 9, 17, 4, 0, 0]), { shape: [1, 6] });
    const a = m.forward(short).lastHiddenState.toArray();
    const mask = nb.tensor(Int32Array.from([1, 1, 1, 1, 0, 0]), { shape: [1, 6] });
    const b = m.forward(padded, { attentionMask: mask }).lastHiddenState.narrow(1, 0, 4).toArray();
    assertClose(b, a, { rtol: 1e-5, atol: 1e-6 });
    const fm = m.forward(padded, { attentionMask: mask.float() }).lastHiddenState.toArray();
    const im = m.forward(padded, { attentionMask: mask }).lastHiddenState.toArray();
    expect(Array.from(fm)).toEqual(Array.from(im));
    const c = m.forward(padded).lastHiddenState.narrow(1, 0, 4).toArray();
    expect(maxAbs(Array.from(c).map((v, i) => v - a[i]))).toBeGreaterThan(1e-3);
    m.dispose();
  });

  it('a [B, T, T] mask: one causal layer gives each row the output of its own prefix', () => {
    nb.manualSeed(8);
    // One layer: with more, the earlier rows of a prefix run see their whole prefix while the
    // causal run's rows do not, so only a single layer has this exact reference.
    const m = new nn.BertModel({ ...small, numHiddenLayers: 1 }).eval();
    const T = 5;
    const ids = nb.tensor(Int32Array.from([5, 9, 17, 4, 11, 3, 8, 8, 21, 2]), { shape: [2, T] });
    const causal = new Int32Array(2 * T * T);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < T; t++) for (let s = 0; s <= t; s++) causal[(b * T + t) * T + s] = 1;
    }
    const mask = nb.tensor(causal, { shape: [2, T, T] });
    const out = m.forward(ids, { attentionMask: mask }).lastHiddenState;
    for (let t = 0; t < T; t++) {
      const prefix = m.forward(ids.narrow(1, 0, t + 1)).lastHiddenState.narrow(1, t, 1);
      assertClose(out.narrow(1, t, 1).toArray(), prefix.toArray(), { rtol: 1e-5, atol: 1e-6 });
    }
    // A key mask repeated over the queries equals the [B, T] mask.
    const keys = Int32Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
    const repeated = new Int32Array(2 * T * T);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < T; t++) repeated.set(keys.subarray(b * T, b * T + T), (b * T + t) * T);
    }
    const two = m.forward(ids, { attentionMask: nb.tensor(keys, { shape: [2, T] }) });
    const three = m.forward(ids, { attentionMask: nb.tensor(repeated, { shape: [2, T, T] }) });
    expect(Array.from(three.lastHiddenState.toArray())).toEqual(
      Array.from(two.lastHiddenState.toArray()),
    );
    expect(() => m.forward(ids, { attentionMask: nb.ones([2, T, T - 1]) })).toThrow(
      /attentionMask float32 \[2, 5, 4\] must be .*\[2, 5, 5\] \(query by key\)/,
    );
    m.dispose();
  });

  it("a noGrad pass frees each layer's intermediates as it goes, unless hooks may keep them", () => {
    nb.manualSeed(9);
    const m = new nn.BertModel({ ...small, numHiddenLayers: 4 }).eval();
    const ids = nb.keep(
      nb.tensor(
        Int32Array.from({ length: 16 * 32 }, (_, i) => (i * 7) % 300),
        { shape: [16, 32] },
      ),
    );
    const withGrad = m.forward(ids).lastHiddenState.toArray();
    const peak = () => {
      nb.resetPeakMemory();
      const base = nb.memory().bytes;
      const out = nb.noGrad(() => nb.tidy(() => m.forward(ids).lastHiddenState.toArray()));
      return { out, bytes: nb.memory().peakBytes - base };
    };
    const freed = peak();
    expect(Array.from(freed.out)).toEqual(Array.from(withGrad));
    // A hook below the encoder turns the release off: it may keep what it is given.
    const kept: nb.Tensor[] = [];
    const handle = m.encoder.layer.at(0).attention.self.query.registerForwardHook((_m, _a, out) => {
      kept.push(out as nb.Tensor);
    });
    const hooked = peak();
    expect(Array.from(hooked.out)).toEqual(Array.from(withGrad));
    expect(freed.bytes).toBeLessThan(0.5 * hooked.bytes);
    handle.remove();
    m.dispose();
    ids.dispose();
  });

  it('classification losses follow HF problem types; bad inputs are typed errors', () => {
    nb.manualSeed(7);
    const m = new nn.BertForSequenceClassification({ ...small, numLabels: 3 }).eval();
    const ids = nb.tensor(Int32Array.from([2, 3, 4, 5, 6, 7]), { shape: [2, 3] });
    const { logits, loss } = m.forward(ids, { labels: nb.tensor(Int32Array.from([2, 0])) });
    assertClose(
      [loss!.item()],
      [nn.functional.crossEntropy(logits, nb.tensor(Int32Array.from([2, 0]))).item()],
      { rtol: 1e-6, atol: 0 },
    );
    const multi = nb.tensor(Float32Array.from([1, 0, 1, 0, 0, 1]), { shape: [2, 3] });
    const bce = m.forward(ids, { labels: multi }).loss!.item();
    assertClose([bce], [nn.functional.binaryCrossEntropyWithLogits(logits, multi).item()], {
      rtol: 1e-6,
      atol: 0,
    });
    expect(() => m.forward(nb.zeros([2, 3]))).toThrow(nb.DTypeError);
    expect(() => m.forward(nb.zeros([3], { dtype: 'int32' }))).toThrow(/\[batch, seq\]/);
    expect(() => m.forward(nb.zeros([1, 33], { dtype: 'int32' }))).toThrow(
      /maxPositionEmbeddings 32/,
    );
    expect(() => m.forward(ids, { attentionMask: nb.ones([2, 2]) })).toThrow(
      /attentionMask float32 \[2, 2\] must be int32 or float32 \[2, 3\]/,
    );
    expect(() => m.forward(ids, { tokenTypeIds: nb.zeros([2, 3]) })).toThrow(/tokenTypeIds/);
    expect(() => m.forward(ids, { labels: nb.zeros([3], { dtype: 'int32' }) })).toThrow(
      nb.ShapeError,
    );
    const mlm = new nn.BertForMaskedLM(small);
    expect(() => mlm.forward(ids, { labels: nb.zeros([2, 2], { dtype: 'int32' }) })).toThrow(
      /labels int32 \[2, 2\] must be int32 \[2, 3\]/,
    );
    m.dispose();
    mlm.dispose();
  });
});

describe('nn.bert.maskTokens', () => {
  it("draws HF's 15% with 80/10/10, never a special id, labels -100 elsewhere", () => {
    const n = 200_000;
    const src = new Int32Array(n);
    for (let i = 0; i < n; i++) src[i] = i % 50 === 0 ? 1 : 5 + (i % 90);
    const ids = nb.tensor(src, { shape: [n / 100, 100] });
    const { inputIds, labels } = nn.bert.maskTokens(ids, {
      maskTokenId: 4,
      vocabSize: 100,
      specialIds: [0, 1, 2, 3],
      seed: 42,
    });
    expect(inputIds.shape).toEqual([n / 100, 100]);
    const inp = inputIds.toArray();
    const lab = labels.toArray();
    let chosen = 0;
    let masked = 0;
    let same = 0;
    let special = 0;
    let wrong = 0;
    for (let i = 0; i < n; i++) {
      if (src[i] === 1) {
        if (lab[i] !== -100 || inp[i] !== 1) special++;
        continue;
      }
      if (lab[i] === -100) {
        if (inp[i] !== src[i]) wrong++;
        continue;
      }
      chosen++;
      if (lab[i] !== src[i]) wrong++;
      if (inp[i] === 4) masked++;
      else if (inp[i] === src[i]) same++;
    }
    expect([special, wrong]).toEqual([0, 0]);
    const eligible = n - n / 50;
    expect(chosen / eligible).toBeCloseTo(0.15, 2);
    expect(masked / chosen).toBeCloseTo(0.8, 1);
    // Kept: 10%, plus the random draws that hit the original id (0.1 / 100).
    expect(Math.abs(same / chosen - 0.101)).toBeLessThan(0.01);
    const again = nn.bert.maskTokens(ids, { maskTokenId: 4, vocabSize: 100, seed: 42 });
    const other = nn.bert.maskTokens(ids, { maskTokenId: 4, vocabSize: 100, seed: 43 });
    expect(Array.from(again.labels.toArray()).filter((v) => v !== -100).length).toBeGreaterThan(0);
    expect(Array.from(other.inputIds.toArray())).not.toEqual(Array.from(again.inputIds.toArray()));
    nb.manualSeed(1);
    const s1 = nn.bert.maskTokens(ids, { maskTokenId: 4, vocabSize: 100 }).inputIds.toArray();
    nb.manualSeed(1);
    const s2 = nn.bert.maskTokens(ids, { maskTokenId: 4, vocabSize: 100 }).inputIds.toArray();
    expect(Array.from(s1)).toEqual(Array.from(s2));
    expect(() => nn.bert.maskTokens(nb.zeros([2, 2]), { maskTokenId: 4, vocabSize: 100 })).toThrow(
      nb.DTypeError,
    );
    expect(() => nn.bert.maskTokens(ids, { maskTokenId: 100, vocabSize: 100 })).toThrow(
      /maskTokenId/,
    );
  });

  it('a plain MLM training loop (no tidy) keeps the heap flat', () => {
    nb.manualSeed(4);
    const m = new nn.BertForMaskedLM({ ...small, vocabSize: 40 });
    const opt = new nb.optim.AdamW(m.parameters(), { lr: 1e-3 });
    const ids = nb.keep(
      nb.tensor(
        Int32Array.from({ length: 64 }, (_, i) => 5 + ((i * 7) % 35)),
        { shape: [4, 16] },
      ),
    );
    const mask = nb.keep(nb.ones([4, 16], { dtype: 'int32' }));
    const step = (k: number): void => {
      const { inputIds, labels } = nn.bert.maskTokens(ids, {
        maskTokenId: 4,
        vocabSize: 40,
        specialIds: [0, 1, 2, 3, 4],
        seed: k,
      });
      const { loss } = m.forward(inputIds, { labels, attentionMask: mask });
      opt.zeroGrad();
      loss!.backward();
      opt.step();
    };
    for (let k = 0; k < 5; k++) step(k);
    const warm = nb.memory();
    for (let k = 5; k < 40; k++) step(k);
    const after = nb.memory();
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
    m.dispose();
    ids.dispose();
    mask.dispose();
  });

  it('pretrains and fine-tunes in a few lines: MLM loss falls, then the classifier learns', () => {
    nb.manualSeed(3);
    const cfg = { ...small, vocabSize: 40, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 };
    const mlm = new nn.BertForMaskedLM(cfg);
    const opt = new nb.optim.AdamW(mlm.parameters(), { lr: 3e-3 });
    // A tiny corpus of 4 fixed "sentences" (ids 5..39), repeated: memorisable by MLM.
    const sentences = Array.from({ length: 4 }, (_, s) =>
      Array.from({ length: 12 }, (_, t) => 5 + ((s * 11 + t * t * 3 + t) % 35)),
    );
    const ids = int2d([...sentences, ...sentences, ...sentences, ...sentences]);
    const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
    const losses: number[] = [];
    for (let step = 0; step < 60; step++) {
      nb.tidy(() => {
        const { inputIds, labels } = nn.bert.maskTokens(ids, {
          maskTokenId: 4,
          vocabSize: 40,
          specialIds: [0, 1, 2, 3, 4],
          seed: step,
        });
        const { loss } = mlm.forward(inputIds, { labels });
        opt.zeroGrad();
        loss!.backward();
        opt.step();
        losses.push(loss!.item());
      });
    }
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 10)) - 1);
    // Fine-tune: the MLM model's weights into a classifier (new pooler and head).
    const clf = new nn.BertForSequenceClassification({ ...cfg, numLabels: 2 });
    const r = clf.loadHuggingFace(mlm.stateDict());
    expect(r.newlyInitialized).toContain('classifier.weight');
    const y = nb.tensor(Int32Array.from({ length: 16 }, (_, i) => (i % 4) % 2));
    const opt2 = new nb.optim.AdamW(clf.parameters(), { lr: 1e-3 });
    const clsLosses: number[] = [];
    for (let step = 0; step < 15; step++) {
      nb.tidy(() => {
        const { loss } = clf.forward(ids, { labels: y });
        opt2.zeroGrad();
        loss!.backward();
        opt2.step();
        clsLosses.push(loss!.item());
      });
    }
    expect(clsLosses[14]).toBeLessThan(0.2);
    mlm.dispose();
    clf.dispose();
  });
});
