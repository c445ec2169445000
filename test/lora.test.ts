// nn.lora: wrapped Linear/Conv1D/Embedding layers against PEFT's formulas written in torch
// (scripts/fixtures/make_lora_fixtures.py), merge/unmerge, PEFT's saved key names and config,
// strict loading, base names unchanged, a 30-step AdamW trajectory against torch, a flat heap.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import type { nn as NN } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

const nn = nb.nn;

interface Rec {
  shape: number[];
  data: number[];
}
interface LinearCase {
  name: string;
  conv1d: boolean;
  r: number;
  alpha: number;
  weight: Rec;
  bias: Rec | null;
  lora_A: Rec;
  lora_B: Rec;
  x: Rec;
  upstream: Rec;
  y: Rec;
  grad_x: Rec;
  grad_A: Rec;
  grad_B: Rec;
  merged_weight: Rec;
}
interface EmbeddingCase {
  name: string;
  r: number;
  alpha: number;
  paddingIdx: number | null;
  weight: Rec;
  lora_embedding_A: Rec;
  lora_embedding_B: Rec;
  indices: Rec;
  upstream: Rec;
  y: Rec;
  grad_A: Rec;
  grad_B: Rec;
  merged_weight: Rec;
}
interface Trajectory {
  r: number;
  alpha: number;
  lr: number;
  weightDecay: number;
  base: Record<string, Rec>;
  lora: Record<string, Rec>;
  xs: Rec;
  ys: Rec;
  losses: number[];
  final: Record<string, Rec>;
}

interface MhaCase {
  name: string;
  embedDim: number;
  numHeads: number;
  r: number;
  alpha: number;
  state: Record<string, Rec>;
  lora_A: Rec;
  lora_B: Rec;
  x: Rec;
  upstream: Rec;
  y: Rec;
  grad_x: Rec;
  grad_A: Rec;
  grad_B: Rec;
  merged_in_proj_weight: Rec;
}

const fx = JSON.parse(readFileSync('test/fixtures/lora.json', 'utf8')) as {
  mha: MhaCase[];
  linear: LinearCase[];
  embedding: EmbeddingCase[];
  trajectory: Trajectory;
};

const T = (r: Rec, requiresGrad = false): nb.Tensor =>
  nb.tensor(Float32Array.from(r.data), { shape: r.shape, requiresGrad });
const I = (r: Rec): nb.Tensor => nb.tensor(Int32Array.from(r.data), { shape: r.shape });
const arr = (t: nb.Tensor): number[] => Array.from(t.toArray());

/** A module with one child `layer` (so the LoRA path is `layer`). */
class Holder extends nn.Module {
  constructor(public layer: NN.Module) {
    super();
  }
  forward(x: nb.Tensor): nb.Tensor {
    return (this.layer as unknown as { forward(t: nb.Tensor): nb.Tensor }).forward(x);
  }
}

function linearHolder(c: LinearCase): Holder {
  const [a, b] = c.weight.shape;
  const layer = c.conv1d ? new nn.Conv1D(b, a) : new nn.Linear(b, a, { bias: c.bias !== null });
  const m = new Holder(layer);
  const sd: Record<string, nb.Tensor> = { 'layer.weight': T(c.weight) };
  if (c.bias) sd['layer.bias'] = T(c.bias);
  m.loadStateDict(sd);
  nn.lora.apply(m, { targetModules: ['layer'], r: c.r, alpha: c.alpha });
  nn.lora.load(m, {
    'base_model.model.layer.lora_A.weight': T(c.lora_A),
    'base_model.model.layer.lora_B.weight': T(c.lora_B),
  });
  return m;
}

beforeAll(async () => {
  await nb.init();
});

describe('LoRA Linear and Conv1D against PEFT formula (torch)', () => {
  for (const c of fx.linear) {
    it(`${c.name}: output and gradients of x, lora_A, lora_B`, () => {
      const m = linearHolder(c);
      const w = m.layer as NN.lora.LoraLinear;
      expect(w).toBeInstanceOf(nn.lora.LoraLinear);
      const x = T(c.x, true);
      const y = m.forward(x);
      assertClose(arr(y), c.y.data, { rtol: 1e-5, atol: 1e-5 }, 'y');
      y.backward(T(c.upstream));
      assertClose(arr(x.grad!), c.grad_x.data, { rtol: 1e-5, atol: 1e-5 }, 'grad x');
      assertClose(arr(w.lora_A.weight.grad!), c.grad_A.data, { rtol: 1e-5, atol: 1e-5 }, 'grad A');
      assertClose(arr(w.lora_B.weight.grad!), c.grad_B.data, { rtol: 1e-5, atol: 1e-5 }, 'grad B');
      // the base is frozen: no gradient reaches it
      expect(w.weight.requiresGrad).toBe(false);
      expect(w.weight.grad).toBeNull();
    });

    it(`${c.name}: merge equals W + s·BA, forward unchanged, unmerge round-trips to 1e-6`, () => {
      const m = linearHolder(c);
      const x = T(c.x);
      const before = arr(m.stateDict()['layer.weight']);
      const y0 = arr(m.forward(x));
      nn.lora.merge(m);
      assertClose(arr(m.stateDict()['layer.weight']), c.merged_weight.data, { atol: 1e-5 }, 'W');
      assertClose(arr(m.forward(x)), y0, { rtol: 1e-5, atol: 1e-5 }, 'merged y');
      expect(Object.keys(m.stateDict())).toEqual(
        c.bias ? ['layer.weight', 'layer.bias'] : ['layer.weight'],
      );
      nn.lora.unmerge(m);
      assertClose(arr(m.stateDict()['layer.weight']), before, { rtol: 0, atol: 1e-6 }, 'unmerged');
    });
  }

  it('starts as the base layer (B = 0) with A Kaiming-uniform (a = √5)', () => {
    nb.manualSeed(3);
    const m = new Holder(new nn.Linear(64, 32));
    const x = nb.randn([4, 64]);
    const y0 = arr(m.forward(x));
    nn.lora.apply(m, { targetModules: ['layer'], r: 16, alpha: 32 });
    const w = m.layer as NN.lora.LoraLinear;
    expect(arr(m.forward(x))).toEqual(y0);
    expect(arr(w.lora_B.weight).every((v) => v === 0)).toBe(true);
    const a = arr(w.lora_A.weight);
    const bound = 1 / Math.sqrt(64); // kaiming-uniform with a = √5 is U(±1/√fan_in)
    expect(Math.max(...a.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...a.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    expect(w.scaling).toBe(2);
    const rs = new Holder(new nn.Linear(4, 4));
    nn.lora.apply(rs, { targetModules: ['layer'], r: 16, alpha: 32, useRslora: true });
    expect((rs.layer as NN.lora.LoraLinear).scaling).toBe(8); // alpha / √r
    expect(nn.lora.config(rs)!.use_rslora).toBe(true);
  });
});

describe('LoRA Embedding against PEFT formula (torch)', () => {
  for (const c of fx.embedding) {
    it(`${c.name}: output, gradients of lora_embedding_A/B, merge round trip`, () => {
      const [num, dim] = c.weight.shape;
      const m = new Holder(new nn.Embedding(num, dim, { paddingIdx: c.paddingIdx }));
      m.loadStateDict({ 'layer.weight': T(c.weight) });
      nn.lora.apply(m, { targetModules: ['layer'], r: c.r, alpha: c.alpha });
      const { tensors } = nn.lora.stateDict(m);
      expect(Object.keys(tensors)).toEqual([
        'base_model.model.layer.lora_embedding_A',
        'base_model.model.layer.lora_embedding_B',
      ]);
      // PEFT's init for embeddings: A zeros, B normal
      expect(arr(tensors['base_model.model.layer.lora_embedding_A']).every((v) => v === 0)).toBe(
        true,
      );
      expect(arr(tensors['base_model.model.layer.lora_embedding_B']).some((v) => v !== 0)).toBe(
        true,
      );
      nn.lora.load(m, {
        'base_model.model.layer.lora_embedding_A': T(c.lora_embedding_A),
        'base_model.model.layer.lora_embedding_B': T(c.lora_embedding_B),
      });
      const w = m.layer as NN.lora.LoraEmbedding;
      const idx = I(c.indices);
      const y = m.forward(idx);
      assertClose(arr(y), c.y.data, { rtol: 1e-5, atol: 1e-5 }, 'y');
      y.backward(T(c.upstream));
      assertClose(arr(w.lora_embedding_A.grad!), c.grad_A.data, { atol: 1e-5 }, 'grad A');
      assertClose(arr(w.lora_embedding_B.grad!), c.grad_B.data, { atol: 1e-5 }, 'grad B');
      const before = arr(w.weight);
      nn.lora.merge(m);
      assertClose(arr(w.weight), c.merged_weight.data, { atol: 1e-5 }, 'merged W');
      assertClose(arr(m.forward(idx)), c.y.data, { rtol: 1e-5, atol: 1e-5 }, 'merged y');
      nn.lora.unmerge(m);
      assertClose(arr(w.weight), before, { rtol: 0, atol: 1e-6 }, 'unmerged');
    });
  }
});

describe('LoRA on MultiheadAttention in_proj against torch', () => {
  for (const c of fx.mha) {
    it(`${c.name}: output, gradients of x, lora_A, lora_B; merge round trip`, () => {
      const mha = new nn.MultiheadAttention(c.embedDim, c.numHeads);
      mha.loadStateDict(Object.fromEntries(Object.entries(c.state).map(([k, v]) => [k, T(v)])));
      const m = new Holder(mha);
      nn.lora.apply(m, { targetModules: ['layer'], r: c.r, alpha: c.alpha });
      expect(Object.keys(m.stateDict())).toEqual(Object.keys(c.state).map((k) => `layer.${k}`));
      nn.lora.load(m, {
        'base_model.model.layer.lora_A.weight': T(c.lora_A),
        'base_model.model.layer.lora_B.weight': T(c.lora_B),
      });
      const w = m.layer as NN.lora.LoraMultiheadAttention;
      const x = T(c.x, true);
      const run = (): nb.Tensor =>
        (w.forward(x, x, x, { needWeights: false }) as [nb.Tensor, unknown])[0];
      const y = run();
      assertClose(arr(y), c.y.data, { rtol: 1e-4, atol: 1e-5 }, 'y');
      y.backward(T(c.upstream));
      assertClose(arr(x.grad!), c.grad_x.data, { rtol: 1e-4, atol: 1e-5 }, 'grad x');
      assertClose(arr(w.lora_A.weight.grad!), c.grad_A.data, { rtol: 1e-4, atol: 1e-5 }, 'A');
      assertClose(arr(w.lora_B.weight.grad!), c.grad_B.data, { rtol: 1e-4, atol: 1e-5 }, 'B');
      expect(mha.in_proj_weight!.grad).toBeNull(); // frozen, and restored after the call
      const before = arr(mha.in_proj_weight!);
      nn.lora.merge(m);
      assertClose(arr(mha.in_proj_weight!), c.merged_in_proj_weight.data, { atol: 1e-5 }, 'W');
      assertClose(arr(run()), c.y.data, { rtol: 1e-4, atol: 1e-5 }, 'merged y');
      nn.lora.unmerge(m);
      assertClose(arr(mha.in_proj_weight!), before, { rtol: 0, atol: 1e-6 }, 'unmerged');
    });
  }
});

/** A small encoder-ish model: names like BERT's (embeddings, query/value, a classifier). */
class Tiny extends nn.Module {
  embeddings = new nn.Embedding(11, 8);
  layers = new nn.ModuleList([0, 1].map(() => new Block()));
  classifier = new nn.Linear(8, 2);
  forward(ids: nb.Tensor): nb.Tensor {
    let h = this.embeddings.forward(ids);
    for (const b of this.layers) h = b.forward(h);
    return this.classifier.forward(h.mean(1));
  }
}
class Block extends nn.Module {
  query = new nn.Linear(8, 8);
  value = new nn.Linear(8, 8, { bias: false });
  norm = new nn.LayerNorm(8);
  forward(h: nb.Tensor): nb.Tensor {
    return this.norm.forward(h.add(this.value.forward(this.query.forward(h).tanh())));
  }
}

describe('nn.lora.apply, stateDict, load', () => {
  it("writes PEFT's key names and config; the model's stateDict keeps the base names", () => {
    const m = new Tiny();
    const baseKeys = Object.keys(m.stateDict());
    const wrapped = nn.lora.apply(m, {
      targetModules: ['query', 'value', 'embeddings'],
      r: 4,
      alpha: 8,
      dropout: 0.1,
      biases: 'lora_only',
      modulesToSave: ['classifier'],
      taskType: 'SEQ_CLS',
      baseModelNameOrPath: 'tiny',
    });
    expect(wrapped).toEqual([
      'embeddings',
      'layers.0.query',
      'layers.0.value',
      'layers.1.query',
      'layers.1.value',
    ]);
    expect(Object.keys(m.stateDict())).toEqual(baseKeys);
    const { tensors, config } = nn.lora.stateDict(m);
    expect(Object.keys(tensors)).toEqual([
      'base_model.model.embeddings.lora_embedding_A',
      'base_model.model.embeddings.lora_embedding_B',
      'base_model.model.layers.0.query.lora_A.weight',
      'base_model.model.layers.0.query.lora_B.weight',
      'base_model.model.layers.0.query.bias',
      'base_model.model.layers.0.value.lora_A.weight',
      'base_model.model.layers.0.value.lora_B.weight',
      'base_model.model.layers.1.query.lora_A.weight',
      'base_model.model.layers.1.query.lora_B.weight',
      'base_model.model.layers.1.query.bias',
      'base_model.model.layers.1.value.lora_A.weight',
      'base_model.model.layers.1.value.lora_B.weight',
      'base_model.model.classifier.weight',
      'base_model.model.classifier.bias',
    ]);
    expect(tensors['base_model.model.layers.0.query.lora_A.weight'].shape).toEqual([4, 8]);
    expect(tensors['base_model.model.layers.0.query.lora_B.weight'].shape).toEqual([8, 4]);
    expect(tensors['base_model.model.embeddings.lora_embedding_A'].shape).toEqual([4, 11]);
    expect(tensors['base_model.model.embeddings.lora_embedding_B'].shape).toEqual([8, 4]);
    expect(config).toMatchObject({
      peft_type: 'LORA',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.1,
      target_modules: ['query', 'value', 'embeddings'],
      bias: 'lora_only',
      modules_to_save: ['classifier'],
      fan_in_fan_out: false,
      task_type: 'SEQ_CLS',
      base_model_name_or_path: 'tiny',
    });
    // trainable: adapters, the wrapped layers' biases, the classifier; nothing else
    const trainable = m
      .namedParameters()
      .filter(([, p]) => p.requiresGrad)
      .map(([n]) => n);
    expect(trainable).toEqual([
      'embeddings.lora_embedding_A',
      'embeddings.lora_embedding_B',
      'layers.0.query.bias',
      'layers.0.query.lora_A.weight',
      'layers.0.query.lora_B.weight',
      'layers.0.value.lora_A.weight',
      'layers.0.value.lora_B.weight',
      'layers.1.query.bias',
      'layers.1.query.lora_A.weight',
      'layers.1.query.lora_B.weight',
      'layers.1.value.lora_A.weight',
      'layers.1.value.lora_B.weight',
      'classifier.weight',
      'classifier.bias',
    ]);
    const info = nn.summary(m, { asObject: true });
    // embedding A [4, 11] + B [8, 4]; per block query bias + 4 matrices [4, 8]; the classifier
    expect(info.trainable).toBe(4 * 11 + 8 * 4 + 2 * (8 + 4 * 32) + 18);
    // frozen: the embedding, per block query weight, value weight, the norm's weight and bias
    expect(info.nonTrainable).toBe(11 * 8 + 2 * (8 * 8 + 8 * 8 + 16));
    expect(info.trainablePercent).toBeCloseTo((100 * 366) / 742, 10);
    expect(nn.summary(m)).toContain('Trainable %: 49.3261');
  });

  it('round-trips through safetensors into a fresh model (PEFT-style from_pretrained)', () => {
    nb.manualSeed(1);
    const src = new Tiny();
    nn.lora.apply(src, { targetModules: ['query', 'value'], r: 2, alpha: 4, biases: 'all' });
    nb.noGrad(() => {
      for (const p of src.parameters()) if (p.requiresGrad) p.copy_(nb.randn(p.shape));
    });
    const { tensors, config } = nn.lora.stateDict(src);
    expect(Object.keys(tensors).filter((k) => k.endsWith('bias'))).toEqual([
      'base_model.model.layers.0.query.bias',
      'base_model.model.layers.0.norm.bias',
      'base_model.model.layers.1.query.bias',
      'base_model.model.layers.1.norm.bias',
      'base_model.model.classifier.bias',
    ]);
    const bytes = nb.io.saveSafetensors(tensors, { adapter_config: JSON.stringify(config) });
    const back = nb.io.loadSafetensors(bytes);
    const meta = JSON.parse(nb.io.safetensorsMetadata(bytes).adapter_config) as NN.lora.LoraConfig;
    const dst = new Tiny();
    dst.loadStateDict(src.stateDict()); // the same base model
    nn.lora.load(dst, back, meta);
    const ids = nb.tensor(Int32Array.from([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
    assertClose(arr(dst.forward(ids)), arr(src.forward(ids)), { rtol: 0, atol: 0 }, 'same');
  });

  it('loads an adapter with modulesToSave into fresh models with no tensor left live', () => {
    const src = new Tiny();
    nn.lora.apply(src, { targetModules: ['query'], r: 2, modulesToSave: ['classifier'] });
    const { tensors, config } = nn.lora.stateDict(src);
    const counts: number[] = [];
    for (let round = 0; round < 3; round++) {
      const m = new Tiny();
      nn.lora.load(m, tensors, config);
      m.dispose();
      counts.push(nb.memory().tensors);
    }
    expect(counts).toEqual([counts[0], counts[0], counts[0]]); // leaked 2 per load before
    Object.values(tensors).forEach((t) => t.dispose());
    src.dispose();
  });

  it("takes per-layer ranks and alphas (PEFT's rank_pattern, alpha_pattern) and reloads them", () => {
    const m = new Tiny();
    nn.lora.apply(m, {
      targetModules: ['query', 'value', 'embeddings'],
      r: 4,
      alpha: 8,
      // 'embeddings' matches the top-level path; 'layers\\.1\\.query' only the second block's
      // query; 'value' every value; 'alue' nothing (a key matches whole dotted names)
      rankPattern: { embeddings: 2, 'layers\\.1\\.query': 3, alue: 7 },
      alphaPattern: { value: 1 },
    });
    const layer = (p: string): NN.lora.LoraLayer => m.getSubmodule(p) as NN.lora.LoraLayer;
    const got = ['embeddings', 'layers.0.query', 'layers.1.query', 'layers.0.value'].map((p) => [
      layer(p).r,
      layer(p).scaling,
    ]);
    expect(got).toEqual([
      [2, 4],
      [4, 2],
      [3, 8 / 3],
      [4, 0.25],
    ]);
    const { tensors, config } = nn.lora.stateDict(m);
    expect(tensors['base_model.model.embeddings.lora_embedding_A'].shape).toEqual([2, 11]);
    expect(tensors['base_model.model.layers.1.query.lora_B.weight'].shape).toEqual([8, 3]);
    expect(config.rank_pattern).toEqual({ embeddings: 2, 'layers\\.1\\.query': 3, alue: 7 });
    expect(config.alpha_pattern).toEqual({ value: 1 });
    // a fresh model built from the config gets the same shapes and scalings
    const fresh = new Tiny();
    nn.lora.load(fresh, tensors, config);
    expect((fresh.getSubmodule('layers.1.query') as NN.lora.LoraLayer).scaling).toBe(8 / 3);
    expect((fresh.getSubmodule('layers.1.value') as NN.lora.LoraLayer).scaling).toBe(0.25);
    expect(() => nn.lora.load(fresh, tensors, { ...config, rank_pattern: {} })).toThrow(
      /rank_pattern is \{\}/,
    );
    expect(() =>
      nn.lora.apply(new Tiny(), { targetModules: ['query'], rankPattern: { query: 0 } }),
    ).toThrow(/rankPattern\['query'\] must be a positive integer/);
    expect(() =>
      nn.lora.apply(new Tiny(), { targetModules: ['query'], alphaPattern: { '(': 1 } }),
    ).toThrow(/alphaPattern key '\(' is not a valid pattern/);
  });

  it('rejects bad options and bad adapters with typed errors, leaving the model unchanged', () => {
    const m = new Tiny();
    const keys = Object.keys(m.stateDict());
    const names = m.namedParameters().map(([n]) => n);
    expect(() => nn.lora.apply(m, { targetModules: ['nothing'] })).toThrow(/match no module/);
    expect(() => nn.lora.apply(m, { targetModules: ['norm'] })).toThrow(
      /'layers.0.norm' is a LayerNorm/,
    );
    const live = nb.memory().tensors;
    expect(() => nn.lora.apply(m, { targetModules: ['query', 'norm'] })).toThrow(/LayerNorm/);
    expect(nb.memory().tensors).toBe(live); // nothing allocated for 'query' either
    expect(() => nn.lora.apply(m, { targetModules: ['query'], r: 0 })).toThrow(nb.ValueError);
    // A misspelt option is an error, not a silent default (r 8 where rank 4 was meant).
    const misspelt = { targetModules: ['query'], rank: 4 } as unknown as NN.lora.LoraOptions;
    expect(() => nn.lora.apply(m, misspelt)).toThrow(/unknown option rank/);
    expect(() => nn.lora.apply(m, { targetModules: ['query'], dropout: 1 })).toThrow(/dropout/);
    expect(() =>
      nn.lora.apply(m, { targetModules: ['query'], biases: 'some' as NN.lora.LoraBias }),
    ).toThrow(/biases/);
    expect(() => nn.lora.apply(m, { targetModules: ['query'], modulesToSave: ['head'] })).toThrow(
      /modulesToSave \[head\]/,
    );
    expect(m.namedParameters().map(([n]) => n)).toEqual(names);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    // load with a config onto a plain model: a missing key undoes the adapters it created
    const cfg = { peft_type: 'LORA' as const, r: 2, lora_alpha: 4, target_modules: ['value'] };
    const good = {
      'base_model.model.layers.0.value.lora_A.weight': nb.zeros([2, 8]),
      'base_model.model.layers.0.value.lora_B.weight': nb.zeros([8, 2]),
      'base_model.model.layers.1.value.lora_A.weight': nb.zeros([2, 8]),
      'base_model.model.layers.1.value.lora_B.weight': nb.zeros([8, 2]),
    };
    const { ['base_model.model.layers.1.value.lora_B.weight']: _, ...missing } = good;
    expect(() => nn.lora.load(m, missing, cfg)).toThrow(
      /missing keys \[base_model.model.layers.1.value.lora_B.weight\]/,
    );
    expect(() =>
      nn.lora.load(m, { ...good, 'base_model.model.extra': nb.zeros([1]) }, cfg),
    ).toThrow(/unexpected keys \[base_model.model.extra\]/);
    expect(() =>
      nn.lora.load(
        m,
        { ...good, 'base_model.model.layers.0.value.lora_A.weight': nb.zeros([3, 8]) },
        cfg,
      ),
    ).toThrow(nb.ShapeError);
    expect(nn.lora.config(m)).toBeNull();
    expect(m.namedParameters().map(([n]) => n)).toEqual(names);
    expect(Object.keys(m.stateDict())).toEqual(keys);
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    // on a model with adapters, a failed load writes nothing
    nn.lora.load(m, good, cfg);
    const w = (m.layers[0] as Block).value as unknown as NN.lora.LoraLinear;
    nb.noGrad(() => w.lora_A.weight.copy_(nb.ones([2, 8])));
    expect(() =>
      nn.lora.load(m, { ...good, 'base_model.model.layers.1.value.lora_B.weight': nb.zeros([8]) }),
    ).toThrow(nb.ShapeError);
    expect(arr(w.lora_A.weight).every((v) => v === 1)).toBe(true);
    expect(() => nn.lora.load(m, good, { ...cfg, lora_alpha: 8 })).toThrow(/lora_alpha is 8/);
    expect(() => nn.lora.apply(m, { targetModules: ['query'] })).toThrow(/already has LoRA/);
  });

  it('mergeAndUnload leaves a plain model computing the same function', () => {
    nb.manualSeed(2);
    const m = new Tiny();
    nn.lora.apply(m, { targetModules: ['query', 'value', 'embeddings'], r: 2, alpha: 2 });
    nb.noGrad(() => {
      for (const p of m.parameters()) if (nn.isAdapterParameter(p)) p.copy_(nb.randn(p.shape));
    });
    const ids = nb.tensor(Int32Array.from([0, 2, 4, 6, 8, 10]), { shape: [2, 3] });
    const y = arr(m.forward(ids));
    const nAdapters = m.parameters().filter((p) => nn.isAdapterParameter(p)).length;
    expect(nAdapters).toBe(10);
    nn.lora.mergeAndUnload(m);
    expect((m.layers[0] as Block).query).toBeInstanceOf(nn.Linear);
    expect((m.layers[0] as Block).query).not.toBeInstanceOf(nn.lora.LoraLayer);
    expect(m.parameters().some((p) => nn.isAdapterParameter(p))).toBe(false);
    assertClose(arr(m.forward(ids)), y, { rtol: 1e-5, atol: 1e-5 }, 'merged');
  });

  it('wraps GPT-2 Conv1D layers (fan_in_fan_out) and a transformer out_proj', () => {
    const gpt = new nn.GPT2LMHeadModel(
      new nn.GPT2Config({ vocabSize: 13, nPositions: 8, nEmbd: 8, nLayer: 1, nHead: 2 }),
    );
    expect(nn.lora.apply(gpt, { targetModules: ['c_attn'], r: 2 })).toEqual([
      'transformer.h.0.attn.c_attn',
    ]);
    expect(nn.lora.config(gpt)!.fan_in_fan_out).toBe(true);
    const enc = new nn.TransformerEncoderLayer(8, 2, { dimFeedforward: 16, dropout: 0 });
    expect(nn.lora.apply(enc, { targetModules: ['out_proj', 'linear1', 'linear2'] })).toEqual([
      'self_attn.out_proj',
      'linear1',
      'linear2',
    ]);
    // the in-projection and the out-projection of one attention module, in one call
    const enc2 = new nn.TransformerEncoderLayer(8, 2, { dropout: 0 });
    expect(nn.lora.apply(enc2, { targetModules: ['self_attn', 'out_proj'], r: 2 })).toEqual([
      'self_attn',
      'self_attn.out_proj',
    ]);
    expect(Object.keys(nn.lora.stateDict(enc2).tensors)).toEqual([
      'base_model.model.self_attn.lora_A.weight',
      'base_model.model.self_attn.lora_B.weight',
      'base_model.model.self_attn.out_proj.lora_A.weight',
      'base_model.model.self_attn.out_proj.lora_B.weight',
    ]);
    expect(Object.keys(enc2.stateDict())).toEqual(
      Object.keys(new nn.TransformerEncoderLayer(8, 2).stateDict()),
    );
    // eval() reaches the hidden base layers (attention dropout off)
    const attn = (enc2.self_attn as unknown as NN.lora.LoraLayer).base_layer;
    enc2.eval();
    expect(attn.training).toBe(false);
    enc2.train();
    expect(attn.training).toBe(true);
    nn.lora.unload(enc2);
    expect(enc2.self_attn).toBe(attn);
    enc2.eval();
    expect(attn.training).toBe(false);
    const kv = new Holder(new nn.MultiheadAttention(8, 2, { kdim: 4, vdim: 4 }));
    expect(() => nn.lora.apply(kv, { targetModules: ['layer'] })).toThrow(
      /MultiheadAttention with separate q\/k\/v projections/,
    );
  });
});

class MLP extends nn.Module {
  fc1 = new nn.Linear(8, 16);
  fc2 = new nn.Linear(16, 16);
  head = new nn.Linear(16, 3);
  forward(x: nb.Tensor): nb.Tensor {
    return this.head.forward(this.fc2.forward(this.fc1.forward(x).tanh()).tanh());
  }
}

describe('LoRA fine-tuning', () => {
  it('a 30-step AdamW trajectory matches torch; base weights stay bitwise unchanged', () => {
    const tr = fx.trajectory;
    const m = new MLP();
    m.loadStateDict(Object.fromEntries(Object.entries(tr.base).map(([k, v]) => [k, T(v)])));
    nn.lora.apply(m, {
      targetModules: ['fc1', 'fc2'],
      r: tr.r,
      alpha: tr.alpha,
      modulesToSave: ['head'],
    });
    nn.lora.load(
      m,
      Object.fromEntries([
        ...Object.entries(tr.lora).map(([k, v]) => [`base_model.model.${k}`, T(v)]),
        ['base_model.model.head.weight', T(tr.base['head.weight'])],
        ['base_model.model.head.bias', T(tr.base['head.bias'])],
      ]),
    );
    const frozen = ['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias'];
    const base0 = Object.fromEntries(frozen.map((k) => [k, arr(m.stateDict()[k])]));
    const opt = new nb.optim.AdamW(m.parameters(), { lr: tr.lr, weightDecay: tr.weightDecay });
    const [steps, batch, dim] = tr.xs.shape;
    const losses: number[] = [];
    for (let t = 0; t < steps; t++) {
      const x = nb.tensor(
        Float32Array.from(tr.xs.data.slice(t * batch * dim, (t + 1) * batch * dim)),
        {
          shape: [batch, dim],
        },
      );
      const y = nb.tensor(Int32Array.from(tr.ys.data.slice(t * batch, (t + 1) * batch)));
      opt.zeroGrad();
      const loss = nb.nn.crossEntropy(m.forward(x), y);
      loss.backward();
      opt.step();
      losses.push(loss.item());
    }
    assertClose(losses, tr.losses, { rtol: 1e-4, atol: 1e-4 }, 'losses');
    const { tensors } = nn.lora.stateDict(m);
    for (const [k, v] of Object.entries(tr.final)) {
      assertClose(arr(tensors[`base_model.model.${k}`]), v.data, { rtol: 1e-3, atol: 1e-4 }, k);
    }
    for (const k of frozen) expect(arr(m.stateDict()[k])).toEqual(base0[k]);
  });

  it('training checkpoints carry the adapters (stateDict with adapters: true)', () => {
    nb.manualSeed(6);
    const m = new MLP();
    nn.lora.apply(m, { targetModules: ['fc1'], r: 2 });
    const full = m.stateDict({ adapters: true });
    expect(Object.keys(full)).toEqual([
      'fc1.weight',
      'fc1.bias',
      'fc1.lora_A.weight',
      'fc1.lora_B.weight',
      'fc2.weight',
      'fc2.bias',
      'head.weight',
      'head.bias',
    ]);
    const bytes = nb.train.saveCheckpoint({ model: m }, { epoch: 1 });
    const w = m.fc1 as unknown as NN.lora.LoraLinear;
    const saved = arr(w.lora_A.weight);
    nb.noGrad(() => w.lora_A.weight.copy_(nb.zeros([2, 8])));
    nb.train.loadCheckpoint(bytes, { model: m });
    expect(arr(w.lora_A.weight)).toEqual(saved);
    // a plain load of the base names still works while adapters are attached
    const other = new MLP();
    m.loadStateDict(other.stateDict());
    expect(arr(w.weight)).toEqual(arr(other.fc1.weight));
  });

  it('200 LoRA training steps keep the wasm heap flat', () => {
    nb.manualSeed(5);
    const m = new MLP();
    nn.lora.apply(m, {
      targetModules: ['fc1', 'fc2'],
      r: 4,
      alpha: 8,
      dropout: 0.1,
      modulesToSave: ['head'],
    });
    const opt = new nb.optim.AdamW(nb.optim.paramGroupsWithDecay(m, { weightDecay: 0.01 }), {
      lr: 1e-3,
    });
    const x = nb.randn([16, 8]);
    const y = nb.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 3));
    const step = (): void =>
      nb.tidy(() => {
        opt.zeroGrad();
        nb.nn.crossEntropy(m.forward(x), y).backward();
        opt.step();
      });
    for (let i = 0; i < 20; i++) step();
    const warm = nb.memory();
    for (let i = 0; i < 200; i++) step();
    const after = nb.memory();
    expect(after.tensors).toBe(warm.tensors);
    expect(after.bytes).toBe(warm.bytes);
    expect(after.heapBytes).toBe(warm.heapBytes);
  });
});
