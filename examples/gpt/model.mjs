// The GPT the example trains: `nn.GPT2LMHeadModel` when the library has it, otherwise this
// file's small GPT-2-shaped stand-in with the same call contract:
//   model.forward(ids int32 [B, T], { pastKeyValues?, useCache? }) → { logits [B, T, V], pastKeyValues }
// Token + position embeddings, pre-LN blocks (causal self-attention, GELU MLP), a final
// LayerNorm and a head tied to the token embedding; GPT-2's initialisation (normal 0.02, the
// residual projections scaled by 1/sqrt(2 · layers)).
import * as nb from 'nabla';

const { nn } = nb;

class CausalSelfAttention extends nn.Module {
  constructor(nEmbd, nHead, dropout) {
    super();
    this.c_attn = new nn.Linear(nEmbd, 3 * nEmbd);
    this.c_proj = new nn.Linear(nEmbd, nEmbd);
    this.resid_dropout = new nn.Dropout(dropout);
    this.nHead = nHead;
    this.dropout = dropout;
  }

  /** x [B, T, C], past [k, v] each [B, H, P, D] or null → [y [B, T, C], [k, v] with P + T]. */
  forward(x, past) {
    const [B, T, C] = x.shape;
    const H = this.nHead;
    const heads = (t) => t.reshape([B, T, H, C / H]).transpose(1, 2);
    let [q, k, v] = this.c_attn.forward(x).split(C, 2).map(heads);
    const P = past ? past[0].shape[2] : 0;
    if (past) {
      k = nb.cat([past[0], k], 2);
      v = nb.cat([past[1], v], 2);
    }
    // Query i sits at position P + i and sees keys 0 … P + i: top-left causal when there is no
    // past, nothing hidden for one new token, an explicit band mask otherwise.
    const opts = { dropoutP: this.training ? this.dropout : 0 };
    if (P === 0) opts.isCausal = T > 1;
    else if (T > 1) opts.attnMask = nb.tril(nb.ones([T, P + T], { dtype: 'int32' }), P);
    const y = nn.functional.scaledDotProductAttention(q, k, v, opts);
    const out = this.resid_dropout.forward(
      this.c_proj.forward(y.transpose(1, 2).reshape([B, T, C])),
    );
    return [out, [k, v]];
  }
}

class MLP extends nn.Module {
  constructor(nEmbd, dropout) {
    super();
    this.c_fc = new nn.Linear(nEmbd, 4 * nEmbd);
    this.act = new nn.GELU({ approximate: 'tanh' }); // GPT-2's gelu_new
    this.c_proj = new nn.Linear(4 * nEmbd, nEmbd);
    this.dropout = new nn.Dropout(dropout);
  }
  forward(x) {
    return this.dropout.forward(this.c_proj.forward(this.act.forward(this.c_fc.forward(x))));
  }
}

class Block extends nn.Module {
  constructor(nEmbd, nHead, dropout) {
    super();
    this.ln_1 = new nn.LayerNorm(nEmbd, { eps: 1e-5 });
    this.attn = new CausalSelfAttention(nEmbd, nHead, dropout);
    this.ln_2 = new nn.LayerNorm(nEmbd, { eps: 1e-5 });
    this.mlp = new MLP(nEmbd, dropout);
  }
  forward(x, past) {
    const [a, present] = this.attn.forward(this.ln_1.forward(x), past);
    x = x.add(a);
    return [x.add(this.mlp.forward(this.ln_2.forward(x))), present];
  }
}

export class SmallGPT extends nn.Module {
  constructor({ vocabSize, nPositions, nEmbd, nLayer, nHead, dropout = 0 }) {
    super();
    if (nEmbd % nHead !== 0)
      throw new Error(`SmallGPT: nEmbd ${nEmbd} is not a multiple of nHead ${nHead}`);
    this.wte = new nn.Embedding(vocabSize, nEmbd);
    this.wpe = new nn.Embedding(nPositions, nEmbd);
    this.drop = new nn.Dropout(dropout);
    this.h = new nn.ModuleList(
      Array.from({ length: nLayer }, () => new Block(nEmbd, nHead, dropout)),
    );
    this.ln_f = new nn.LayerNorm(nEmbd, { eps: 1e-5 });
    this.nPositions = nPositions;
    nb.noGrad(() => {
      for (const [name, p] of this.namedParameters()) {
        if (name.endsWith('bias')) nn.init.zeros_(p);
        else if (!name.includes('ln_')) {
          const residual = name.endsWith('c_proj.weight');
          nn.init.normal_(p, 0, residual ? 0.02 / Math.sqrt(2 * nLayer) : 0.02);
        }
      }
    });
  }

  forward(ids, { pastKeyValues = null } = {}) {
    const [, T] = ids.shape;
    const P = pastKeyValues ? pastKeyValues[0][0].shape[2] : 0;
    if (P + T > this.nPositions)
      throw new Error(`SmallGPT: ${P + T} positions exceed nPositions ${this.nPositions}`);
    const pos = nb.arange(P, P + T, 1, { dtype: 'int32' });
    let x = this.drop.forward(this.wte.forward(ids).add(this.wpe.forward(pos)));
    const presents = [];
    let i = 0;
    for (const block of this.h) {
      const [y, present] = block.forward(x, pastKeyValues?.[i++] ?? null);
      presents.push(present);
      x = y;
    }
    // The tied head: logits = ln_f(x) · wteᵀ, the embedding matrix read as a Linear weight.
    const logits = nn.functional.linear(this.ln_f.forward(x), this.wte.weight);
    return { logits, pastKeyValues: presents };
  }
}

/** The library's GPT-2 when present (issue 11's nn.GPT2LMHeadModel), else SmallGPT. */
export function makeGPT(config) {
  if (nn.GPT2LMHeadModel && nn.GPT2Config) {
    const { dropout = 0, ...rest } = config;
    const hf = new nn.GPT2Config({
      ...rest,
      residPdrop: dropout,
      embdPdrop: dropout,
      attnPdrop: dropout,
    });
    return new nn.GPT2LMHeadModel(hf);
  }
  return new SmallGPT(config);
}
