// The tiny GPT of the `gpt` and `kvcache` workloads on nabla's side, and the token data every
// library trains on. The model is `nn.GPT2LMHeadModel` when the library has it; until then a
// GPT-2 written with nabla's public modules (what a user would write), with the same API
// (`forward(ids, { labels, pastKeyValues, useCache })` → `{ logits, loss, pastKeyValues }`),
// parameter names and initialisation. torch_attention.py writes the same architecture in torch.
import * as nb from 'nabla';
import { rng } from '../lib/random.mjs';

/**
 * `count` batches of `batch` × `seqLen` int32 tokens from a sparse Markov chain (each token has
 * three possible successors), so the loss can fall well below ln(vocab) within a few hundred
 * steps. torch_attention.py draws the identical tokens with the same generator.
 */
export function markovBatches({ vocab, batch, seqLen, count, seed }) {
  const r = rng(seed);
  const next = Array.from({ length: vocab }, () =>
    Array.from({ length: 3 }, () => Math.floor(r() * vocab)),
  );
  const out = [];
  for (let b = 0; b < count; b++) {
    const ids = new Int32Array(batch * seqLen);
    for (let row = 0; row < batch; row++) {
      let t = Math.floor(r() * vocab);
      for (let i = 0; i < seqLen; i++) {
        ids[row * seqLen + i] = t;
        t = next[t][Math.floor(r() * 3)];
      }
    }
    out.push(ids);
  }
  return out;
}

const { Module, Linear, LayerNorm, Embedding, ModuleList, functional: F } = nb.nn;

class Block extends Module {
  constructor(c) {
    super();
    this.nHead = c.nHead;
    this.ln_1 = new LayerNorm(c.nEmbd);
    this.attn = new Module();
    this.attn.c_attn = new Linear(c.nEmbd, 3 * c.nEmbd);
    this.attn.c_proj = new Linear(c.nEmbd, c.nEmbd);
    this.ln_2 = new LayerNorm(c.nEmbd);
    this.mlp = new Module();
    this.mlp.c_fc = new Linear(c.nEmbd, 4 * c.nEmbd);
    this.mlp.c_proj = new Linear(4 * c.nEmbd, c.nEmbd);
  }

  forward(x, past) {
    const [B, T, C] = x.shape;
    const H = this.nHead;
    // [B, T, 3C] → q, k, v each [B, H, T, C/H]
    const qkv = this.attn.c_attn
      .forward(this.ln_1.forward(x))
      .reshape([B, T, 3, H, C / H])
      .permute([2, 0, 3, 1, 4]);
    const [q, k0, v0] = [0, 1, 2].map((i) => qkv.narrow(0, i, 1).squeeze(0));
    if (past && T !== 1) throw new Error('tinygpt: a cached forward takes one token at a time');
    const k = past ? nb.cat([past[0], k0], 2) : k0;
    const v = past ? nb.cat([past[1], v0], 2) : v0;
    // One new token attends to every cached position: no mask needed.
    const y = F.scaledDotProductAttention(q, k, v, { isCausal: !past });
    const a = this.attn.c_proj.forward(y.permute([0, 2, 1, 3]).reshape([B, T, C]));
    const h = x.add(a);
    const m = this.mlp.c_proj.forward(
      F.gelu(this.mlp.c_fc.forward(this.ln_2.forward(h)), { approximate: 'tanh' }),
    );
    return { out: h.add(m), present: [k, v] };
  }
}

class ComposedGPT extends Module {
  constructor(c) {
    super();
    this.config = c;
    this.transformer = new Module();
    this.transformer.wte = new Embedding(c.vocabSize, c.nEmbd);
    this.transformer.wpe = new Embedding(c.nPositions, c.nEmbd);
    this.transformer.h = new ModuleList(Array.from({ length: c.nLayer }, () => new Block(c)));
    this.transformer.ln_f = new LayerNorm(c.nEmbd);
    // Hugging Face's initialisation: N(0, 0.02) weights, zero biases, residual projections
    // scaled by 1/√(2·nLayer). The head is tied to wte (one parameter, used twice).
    nb.noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        if (name.includes('ln_')) continue;
        if (name.endsWith('.bias')) nb.nn.init.zeros_(p);
        else {
          const proj = name.endsWith('c_proj.weight');
          nb.nn.init.normal_(p, 0, proj ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02);
        }
      }
    });
  }

  forward(ids, opts = {}) {
    const [B, T] = ids.shape;
    const past = opts.pastKeyValues ?? null;
    const start = past ? past[0][0].shape[2] : 0;
    const pos = nb.arange(start, start + T, 1, { dtype: 'int32' });
    const tr = this.transformer;
    let x = tr.wte.forward(ids).add(tr.wpe.forward(pos));
    const presents = [];
    [...tr.h].forEach((block, i) => {
      const r = block.forward(x, past ? past[i] : null);
      x = r.out;
      presents.push(r.present);
    });
    const logits = F.linear(tr.ln_f.forward(x), tr.wte.weight);
    const out = { logits, pastKeyValues: opts.useCache ? presents : null, loss: null };
    if (opts.labels) {
      // Hugging Face's shift: position t predicts label t + 1.
      const V = this.config.vocabSize;
      out.loss = F.crossEntropy(
        logits.narrow(1, 0, T - 1).reshape([B * (T - 1), V]),
        opts.labels.narrow(1, 1, T - 1).reshape([B * (T - 1)]),
      );
    }
    return out;
  }
}

/** nabla's GPT-2 LM: the library's model if present, else the composition above. */
export function makeGpt(c) {
  const config = { residPdrop: 0, embdPdrop: 0, attnPdrop: 0, ...c };
  if (nb.nn.GPT2LMHeadModel && nb.nn.GPT2Config) {
    return {
      model: new nb.nn.GPT2LMHeadModel(new nb.nn.GPT2Config(config)),
      via: 'nn.GPT2LMHeadModel',
    };
  }
  return {
    model: new ComposedGPT(config),
    via: 'GPT-2 composed of nn.Embedding, nn.LayerNorm, nn.Linear, F.gelu(tanh), F.scaledDotProductAttention',
  };
}
