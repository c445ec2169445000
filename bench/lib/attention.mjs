// The attention workloads on the parent's side (issue 11's speed section): their config, the
// checks on each child's result, how rounds merge, the comparison rows, their table and their
// targets. The children are workloads/attention.mjs (nabla, tfjs) and torch_attention.py.
//
//   sdpa     causal scaled-dot-product attention, forward + gradients of q, k, v
//   gpt      one AdamW training step of a tiny GPT-2 (d 128, 4 heads, 2 layers, T 64, batch 16)
//   kvcache  greedy generation at prefix 256: per-token time with the KV cache vs re-running
import { checkFirstAdamWStep } from './attention-check.mjs';
import { decodeF32, checkLossFalls } from './stepcheck.mjs';
import { ratio } from './rows.mjs';

export const ATTENTION_WORKLOADS = ['sdpa', 'gpt', 'kvcache'];
const TFJS = ['tfjs-cpu', 'tfjs-wasm'];

export function attentionConfig(quick) {
  // tfjs children only report what they lack: one round is enough.
  const rounds = { rounds: quick ? 1 : 2, singleRound: TFJS };
  const tiny = { vocabSize: 96, nEmbd: 128, nLayer: 2, nHead: 4 };
  return {
    sdpa: {
      ...rounds,
      ...(quick
        ? { batch: 2, heads: 2, headDim: 16, lengths: [32, 64] }
        : { batch: 4, heads: 8, headDim: 64, lengths: [256, 1024] }),
      checkRows: 4,
      timing: quick
        ? { warmupMs: 5, sampleMs: 2, samples: 3, minSamples: 2, budgetMs: 20 }
        : { warmupMs: 200, sampleMs: 300, samples: 5, minSamples: 3, budgetMs: 4000 },
    },
    gpt: {
      ...rounds,
      model: quick ? { ...tiny, nEmbd: 32, nPositions: 16 } : { ...tiny, nPositions: 64 },
      data: { vocab: 96, batch: quick ? 4 : 16, seqLen: quick ? 16 : 64, seed: 11 },
      // Fixed batches cycled through the timed steps; enough that the ~100 timed steps of a
      // full run do not just memorise them.
      batches: quick ? 2 : 32,
      lr: quick ? 3e-3 : 1e-3,
      weightDecay: 0.01,
      timing: quick
        ? { warmupSteps: 2, windowMs: 30, windows: 3 }
        : { warmupSteps: 10, windowMs: 1000, windows: 7 },
    },
    kvcache: {
      ...rounds,
      model: { ...tiny, nPositions: quick ? 64 : 512 },
      prefix: quick ? 32 : 256,
      newTokens: quick ? 4 : 32,
      seed: 13,
      tolerance: 1e-4,
      timing: quick
        ? { warmupMs: 5, sampleMs: 2, samples: 3, minSamples: 2, budgetMs: 20 }
        : { warmupMs: 200, sampleMs: 500, samples: 5, minSamples: 3, budgetMs: 4000 },
    },
  };
}

/** The parent's checks (lib/checks.mjs calls this for the attention workloads). */
export function verifyAttention(library, workload, result, config) {
  const r = result[workload];
  if (!r) throw new Error(`${library}: no ${workload} result`);
  if (r.unsupported) return result;
  if (workload === 'sdpa') {
    if (r.cases?.length !== config.sdpa.lengths.length) {
      throw new Error(`${library}: sdpa ran ${r.cases?.length ?? 0} cases`);
    }
    for (const c of r.cases) {
      if (c.verified !== 'last timed call') {
        throw new Error(`${library}: sdpa T ${c.T} was not verified`);
      }
    }
  } else if (workload === 'gpt') {
    const sc = r.stepCheck;
    if (!sc?.p0 || !sc?.p1) throw new Error(`${library}: the GPT step reported no parameters`);
    const update = checkFirstAdamWStep({
      library,
      lr: config.gpt.lr,
      weightDecay: config.gpt.weightDecay,
      p0: sc.p0,
      p1: sc.p1,
      lossBefore: sc.losses[0],
      lossAfter: sc.lossAfter,
      decode: decodeF32,
    });
    const loss = checkLossFalls({ library, losses: sc.losses, cycle: sc.cycle });
    r.stepCheck = { steps: sc.losses.length, ...update, ...loss };
  } else if (workload === 'kvcache') {
    if (r.verified !== 'last timed generation of each way') {
      throw new Error(`${library}: the KV-cache generation was not verified`);
    }
  }
  return result;
}

/** Best round per figure (lib/rounds.mjs's rule); each round's figures are kept. */
export function mergeAttentionRounds(workload, runs, merged) {
  const parts = runs.map((r) => r[workload]);
  if (parts[0].unsupported) return { ...merged, [workload]: parts[0] };
  if (workload === 'sdpa') {
    const cases = parts[0].cases.map((_, i) => {
      const all = parts.map((p) => p.cases[i]);
      const best = all.reduce((a, b) => (b.ms < a.ms ? b : a));
      return { ...best, rounds: all.map((c) => c.ms) };
    });
    return { ...merged, sdpa: { ...parts[0], cases } };
  }
  if (workload === 'gpt') {
    const best = parts.reduce((a, b) => (b.tokensPerSec > a.tokensPerSec ? b : a));
    return { ...merged, gpt: { ...best, rounds: parts.map((p) => p.tokensPerSec) } };
  }
  const cached = Math.min(...parts.map((p) => p.cachedMsPerToken));
  const rerun = Math.min(...parts.map((p) => p.rerunMsPerToken));
  return {
    ...merged,
    kvcache: {
      ...parts[0],
      cachedMsPerToken: cached,
      rerunMsPerToken: rerun,
      speedup: rerun / cached,
      contended: parts.every((p) => p.contended),
      rounds: parts.map((p) => ({ cached: p.cachedMsPerToken, rerun: p.rerunMsPerToken })),
    },
  };
}

const MB = 1024 * 1024;

function rowSpecs(config) {
  const { batch, heads, headDim, lengths } = config.sdpa;
  const g = config.gpt;
  const kv = config.kvcache;
  return [
    ...lengths.map((T, i) => ({
      id: `sdpa:T${T}:ms`,
      label: `SDPA causal fwd+bwd, B ${batch} H ${heads} T ${T} E ${headDim}, ms`,
      better: 'lower',
      pick: (r) => r.sdpa?.cases?.[i]?.ms,
      contended: (r) => r.sdpa?.cases?.[i]?.contended,
    })),
    {
      id: 'gpt:tokensPerSec',
      label: `tiny GPT train step (d ${g.model.nEmbd}, ${g.model.nHead} heads, ${g.model.nLayer} layers, T ${g.data.seqLen}, batch ${g.data.batch}, AdamW), tokens/s`,
      better: 'higher',
      pick: (r) => r.gpt?.tokensPerSec,
      contended: (r) => r.gpt?.contended,
    },
    {
      id: 'gpt:peakRss',
      label: 'peak RSS, tiny GPT training, MB',
      better: 'lower',
      pick: (r) => (r.gpt?.unsupported ? null : r.memory?.peakRss / MB),
    },
    {
      id: 'gpt:wasmHeap',
      label: 'wasm heap, tiny GPT training, MB',
      better: 'lower',
      pick: (r) => (r.gpt?.unsupported ? null : r.memory?.wasmHeapBytes / MB),
    },
    {
      id: 'kvcache:cachedMs',
      label: `generation at prefix ${kv.prefix}, ms/token, with the KV cache`,
      better: 'lower',
      pick: (r) => r.kvcache?.cachedMsPerToken,
      contended: (r) => r.kvcache?.contended,
    },
    {
      id: 'kvcache:rerunMs',
      label: `generation at prefix ${kv.prefix}, ms/token, re-running the prefix`,
      better: 'lower',
      pick: (r) => r.kvcache?.rerunMsPerToken,
      contended: (r) => r.kvcache?.contended,
    },
    {
      id: 'kvcache:speedup',
      label: 'KV-cache speedup per token (re-run ÷ cached), x',
      better: null,
      pick: (r) => r.kvcache?.speedup,
    },
  ];
}

/** One row per figure, in lib/rows.mjs's shape, plus `unsupported[lib]` with the reason. */
export function attentionRows(config, results, libraries) {
  return rowSpecs(config)
    .map(({ id, label, better, pick, contended = () => false }) => {
      const workload = id.split(':')[0];
      const row = {
        id,
        section: 'attention',
        label,
        unit: id.endsWith('speedup') ? 'x' : '',
        better,
        values: {},
        notes: {},
        contended: {},
        unsupported: {},
        ratios: {},
      };
      let ran = false;
      for (const lib of libraries) {
        const r = results[lib]?.[workload];
        if (r) ran = true;
        const v = r ? pick(r) : null;
        row.values[lib] = typeof v === 'number' && Number.isFinite(v) ? v : null;
        if (r?.[workload]?.unsupported) {
          row.unsupported[lib] = r[workload].unsupported;
          row.why = { ...row.why, [lib]: r[workload].why };
        }
        if (r && row.values[lib] !== null && contended(r)) row.contended[lib] = true;
      }
      for (const peer of libraries) {
        if (peer !== 'nabla') row.ratios[peer] = ratio(better, row.values.nabla, row.values[peer]);
      }
      return ran ? row : null;
    })
    .filter(Boolean);
}

/** The attention table in the report's markdown (empty when none of these workloads ran). */
export function attentionMarkdown({ rows, libraries, num, ratioText, table }) {
  const mine = rows.filter((r) => r.section === 'attention');
  if (!mine.length) return [];
  const peers = libraries.filter((l) => l !== 'nabla');
  const cell = (row, lib) => {
    if (row.unsupported[lib]) return `${row.unsupported[lib]} ¹`;
    const v = row.values[lib];
    if (v === null) return '—';
    const mark = row.contended[lib] ? ' ‡' : '';
    return `${num(v, row.unit)}${mark}${lib === 'nabla' ? '' : ratioText(row.ratios[lib])}`;
  };
  const out = ['', '### Attention and a tiny GPT', ''];
  out.push(
    table(
      ['metric', 'nabla', ...peers],
      ['l', 'r', ...peers.map(() => 'r')],
      mine.map((r) => [r.label, cell(r, 'nabla'), ...peers.map((p) => cell(r, p))]),
    ),
  );
  const reasons = new Map();
  for (const r of mine) {
    for (const [lib, why] of Object.entries(r.why ?? {})) reasons.set(lib, why);
  }
  out.push('');
  out.push(
    "SDPA: causal, one call = forward plus the gradients of q, k and v (nabla: the fused `nn.functional.scaledDotProductAttention` and `autograd.grad`; PyTorch 1.13: the faster of its `_scaled_dot_product_attention` and softmax(QKᵀ/√E + mask)V written out, both timed); the last timed output and gradients are checked against float64 on 4 rows of 2 heads. Tiny GPT: GPT-2 (pre-LN, tanh GELU, tied head), vocabulary 96, AdamW (lr, weight decay 0.01), token batches from one seeded Markov chain for every library; the first timed update must be AdamW's first (every weight moved by lr, after decay), lowering its batch's loss, and the loss must fall over the timed steps. Generation: greedy, one forward per new token, the cached logits checked against the re-run's at every step.",
  );
  for (const [lib, why] of reasons) out.push('', `¹ ${lib}, as tried in its child: ${why}.`);
  return out;
}

/** Issue 11's speed targets. */
export function attentionTargets(rows) {
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const out = [];
  const add = (target, v, text, pass) =>
    out.push({
      target,
      measured: v === null ? 'n/a' : text,
      value: v,
      met: v === null ? null : pass(v),
    });
  const gpt = byId['gpt:tokensPerSec']?.ratios.torch ?? null;
  add(
    'tiny GPT step ≥ 0.6x native PyTorch (tokens/s)',
    gpt,
    `${gpt?.toFixed(2)}x`,
    (v) => v >= 0.6,
  );
  const sdpa = rows
    .filter((r) => r.id.startsWith('sdpa:') && typeof r.ratios.torch === 'number')
    .map((r) => ({ v: r.ratios.torch, T: r.id.split(':')[1] }));
  const worst = sdpa.length ? sdpa.reduce((a, b) => (b.v < a.v ? b : a)) : null;
  add(
    'SDPA fwd+bwd ≥ 0.5x PyTorch 1.13, every length',
    worst?.v ?? null,
    `lowest ${worst?.v.toFixed(2)}x (${worst?.T})`,
    (v) => v >= 0.5,
  );
  const kv = byId['kvcache:speedup']?.values.nabla ?? null;
  add(
    'generation with the KV cache ≥ 10x faster per token than re-running the prefix',
    kv,
    `${kv?.toFixed(1)}x`,
    (v) => v >= 10,
  );
  return out;
}
