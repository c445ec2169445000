// The attention workloads' JS child (`sdpa`, `gpt`, `kvcache`; lib/attention.mjs is the
// parent's side): `node attention.mjs <library> <workload> <config.json> <result.json>`.
//
// nabla runs them; for tfjs-cpu and tfjs-wasm the child tries what would be needed (an attention
// layer, AdamW, an embedding gradient) and reports why the workload cannot run, from the errors
// it actually got. torch_attention.py is PyTorch's side, rule for rule.
//
// Every timed piece of work checks itself here, before any figure is written: the last timed
// SDPA output and gradients against float64 (lib/attention-check.mjs), the GPT step's first
// update and losses in the parent, the cached generation's logits against the full re-run's.
import { readFileSync, writeFileSync } from 'node:fs';
import { meter } from '../lib/cpu.mjs';
import { rssSampler } from '../lib/memory.mjs';
import { uniform } from '../lib/random.mjs';
import { encodeF32 } from '../lib/stepcheck.mjs';
import { timeCalls, timeCheckedSteps } from '../lib/timing.mjs';
import { checkSdpa } from '../lib/attention-check.mjs';
import { nablaInitOptions } from '../lib/config.mjs';

const [library, workload, configPath, resultPath] = process.argv.slice(2);
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const plant = config.plant ?? null;

/** nabla's side of each workload. */
async function nablaWorkloads() {
  const nb = await import('nabla');
  await nb.init(nablaInitOptions(library));
  const { makeGpt, markovBatches } = await import('./tinygpt.mjs');
  const F = nb.nn.functional;
  const pkg = JSON.parse(
    readFileSync(new URL('../package.json', import.meta.resolve('nabla')), 'utf8'),
  );
  const memory = () => {
    const m = nb.memory();
    return { wasmHeapBytes: m.heapBytes, tensorBytes: m.bytes, tensors: m.tensors };
  };

  function sdpa(mem) {
    const { batch, heads, headDim, lengths, timing } = config.sdpa;
    const cases = lengths.map((T, c) => {
      const shape = [batch, heads, T, headDim];
      const n = batch * heads * T * headDim;
      const data = [1, 2, 3, 4].map((s) => uniform(n, 100 * c + s));
      const [q, k, v] = data
        .slice(0, 3)
        .map((d) => nb.keep(nb.tensor(d, { shape, requiresGrad: true })));
      const g = nb.keep(nb.tensor(data[3], { shape }));
      // One timed call = the forward and the gradients of q, k and v for the upstream
      // gradient g; each call's results replace the previous ones and the last are checked.
      let last = null;
      const idle = plant === 'noop-sdpa' ? [q, k, v, g].map((t) => nb.keep(t.mul(0))) : null;
      const call = idle
        ? () => idle
        : () =>
            nb.tidy(() => {
              const o = F.scaledDotProductAttention(q, k, v, { isCausal: true });
              return [o, ...nb.autograd.grad([o], [q, k, v], { gradOutputs: [g] })];
            });
      const run = () => {
        const r = call();
        if (last && last !== r) last.forEach((t) => t.dispose());
        last = r;
      };
      const t = timeCalls(run, timing);
      const check = checkSdpa({
        shape,
        q: data[0],
        k: data[1],
        v: data[2],
        g: data[3],
        got: last.map((x) => x.toArray()),
        rows: config.sdpa.checkRows,
      });
      mem.sample();
      return {
        T,
        shape,
        ms: t.ms,
        samples: t.samples,
        discarded: t.discarded,
        contended: t.contended,
        reps: t.reps,
        spread: t.spread,
        via: 'nn.functional.scaledDotProductAttention(q, k, v, { isCausal: true }) + autograd.grad',
        verified: 'last timed call',
        check,
      };
    });
    return { sdpa: { cases } };
  }

  function gpt(mem) {
    const c = config.gpt;
    nb.manualSeed(config.seed);
    const { model, via } = makeGpt(c.model);
    const batches = markovBatches({ ...c.data, count: c.batches }).map((ids) =>
      nb.keep(nb.tensor(ids, { shape: [c.data.batch, c.data.seqLen] })),
    );
    const opt =
      plant === 'gpt-sgd'
        ? new nb.optim.SGD(model.parameters(), { lr: 0.1 })
        : new nb.optim.AdamW(model.parameters(), { lr: c.lr, weightDecay: c.weightDecay });
    const lossOf = (ids) =>
      nb.noGrad(() => nb.tidy(() => model.forward(ids, { labels: ids }).loss.item()));
    const step = (ids) => {
      const loss = nb.tidy(() => {
        const { loss: l } = model.forward(ids, { labels: ids });
        if (plant !== 'gpt-no-backward') l.backward();
        return l.item();
      });
      opt.step();
      opt.zeroGrad();
      return loss;
    };
    const params = () => model.parameters().map((p) => encodeF32(Float32Array.from(p.toArray())));
    // As driver.mjs's train (timeCheckedSteps), plus the first batch's loss after the update.
    const run = timeCheckedSteps({
      batches,
      step,
      snapshot: params,
      afterFirst: (ids) => ({ lossAfter: lossOf(ids) }),
      timing: c.timing,
      onWindow: mem.sample,
    });
    const tokens = c.data.batch * c.data.seqLen;
    return {
      gpt: {
        via,
        tokensPerStep: tokens,
        ...run.timing,
        tokensPerSec: (tokens * 1000) / run.ms,
        finalLoss: run.finalLoss,
        stepCheck: run.stepCheck,
      },
    };
  }

  function kvcache(mem) {
    const c = config.kvcache;
    nb.manualSeed(config.seed);
    const { model, via } = makeGpt(c.model);
    const [tokens] = markovBatches({
      vocab: c.model.vocabSize,
      batch: 1,
      seqLen: c.prefix + c.newTokens,
      count: 1,
      seed: c.seed,
    });
    const prefix = nb.keep(nb.tensor(tokens.subarray(0, c.prefix), { shape: [1, c.prefix] }));
    // The fed tokens are fixed (the data's continuation), so both ways do identical work and
    // their logits can be compared step by step; each step still picks its argmax token.
    const fed = Array.from(tokens.subarray(c.prefix), (t) =>
      nb.keep(nb.tensor(Int32Array.of(t), { shape: [1, 1] })),
    );
    // The prefix's keys and values, computed once (prefill is not part of per-token time).
    const past = nb.noGrad(() =>
      nb.tidy(() => model.forward(prefix, { useCache: true }).pastKeyValues),
    );
    past.flat().forEach((t) => nb.keep(t));
    const lastRow = (logits) => logits.narrow(1, logits.shape[1] - 1, 1).reshape([-1]);
    // Both ways run one forward per generated token and pick its argmax, as greedy decoding
    // does. Cached: the new token against the keys and values kept so far.
    const cached = () =>
      nb.noGrad(() =>
        nb.tidy(() => {
          const rows = [];
          const picks = [];
          let kv = past;
          for (const ids of fed) {
            const out =
              plant === 'kvcache-no-past'
                ? model.forward(ids, { useCache: true })
                : model.forward(ids, { pastKeyValues: kv, useCache: true });
            kv = out.pastKeyValues;
            const row = lastRow(out.logits);
            picks.push(row.argmax(0).item());
            rows.push(row.toArray());
          }
          return { rows, picks };
        }),
      );
    // Re-run: the whole sequence so far through the model again for every new token.
    const rerun = () =>
      nb.noGrad(() =>
        nb.tidy(() => {
          const rows = [];
          const picks = [];
          let ids = prefix;
          for (const t of fed) {
            ids = nb.cat([ids, t], 1);
            const row = lastRow(model.forward(ids).logits);
            picks.push(row.argmax(0).item());
            rows.push(row.toArray());
          }
          return { rows, picks };
        }),
      );
    let a = null;
    let b = null;
    const tc = timeCalls(() => (a = cached()), c.timing);
    mem.sample();
    const tr = timeCalls(() => (b = rerun()), c.timing);
    mem.sample();
    const check = checkGeneration(a, b, c.tolerance);
    const n = fed.length;
    return {
      kvcache: {
        via,
        prefix: c.prefix,
        newTokens: n,
        cachedMsPerToken: tc.ms / n,
        rerunMsPerToken: tr.ms / n,
        speedup: tr.ms / tc.ms,
        contended: tc.contended || tr.contended,
        cachedSamples: tc.samples,
        rerunSamples: tr.samples,
        verified: 'last timed generation of each way',
        check,
      },
    };
  }

  return { version: pkg.version, memory, workloads: { sdpa, gpt, kvcache } };
}

/** The cached way's logits must equal the full re-run's at every generated position. */
function checkGeneration(a, b, tol) {
  if (a.rows.length !== b.rows.length) {
    throw new Error(`kvcache: ${a.rows.length} cached logits rows vs ${b.rows.length} re-run`);
  }
  let maxErr = 0;
  a.rows.forEach((row, s) => {
    row.forEach((x, j) => {
      const e = Math.abs(x - b.rows[s][j]);
      if (!(e <= tol)) {
        throw new Error(
          `kvcache: the cached generation's logits differ from re-running the prefix at step ${s}, token ${j}: ${x} vs ${b.rows[s][j]}`,
        );
      }
      maxErr = Math.max(maxErr, e);
    });
  });
  return { positions: a.rows.length, maxAbsError: maxErr };
}

/** tfjs: tries what a GPT needs and reports the first thing that is missing, per workload. */
async function tfjsWorkloads(backend) {
  const tf = await import('@tensorflow/tfjs');
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (!(await tf.setBackend(backend))) throw new Error(`tfjs: backend ${backend} unavailable`);
  await tf.ready();
  const missing = [];
  // Nothing in tfjs 4.22 computes attention: no layer, no op.
  const attentionLayer = ['multiHeadAttention', 'MultiHeadAttention', 'attention'].find(
    (n) => typeof tf.layers[n] === 'function',
  );
  const attentionOp = Object.keys(tf).find((n) => /attention/i.test(n));
  if (!attentionLayer && !attentionOp) {
    missing.push(
      `no attention layer or op (tf.layers has no MultiHeadAttention in ${tf.version.tfjs})`,
    );
  }
  if (typeof tf.train.adamw !== 'function') missing.push('no AdamW optimizer (tf.train)');
  // The token embedding's gradient: tf.gather's backward.
  try {
    const w = tf.variable(tf.randomNormal([96, 8]));
    const idx = tf.tensor1d([1, 5, 5], 'int32');
    const g = tf.grad((x) => tf.gather(x, idx).sum())(w);
    g.dataSync();
  } catch (e) {
    missing.push(`embedding gradient fails: ${String(e.message).split('\n')[0]}`);
  }
  // With the embedding gradient present (the cpu backend), a GPT could still be written by
  // hand from low-level ops with a hand-written AdamW; the table says so rather than "cannot".
  const handWritten = !missing.some((m) => m.startsWith('embedding'));
  const why =
    missing.join('; ') +
    (handWritten
      ? '; a GPT and AdamW hand-written from its low-level ops could run (not measured)'
      : '');
  const report = (status) => () => ({ unsupported: status, why });
  return {
    version: tf.version.tfjs,
    memory: () => ({ tensorBytes: tf.memory().numBytes }),
    workloads: {
      sdpa: () => ({ sdpa: report('no attention op')() }),
      gpt: () => ({ gpt: report(handWritten ? 'no GPT layers' : 'cannot train')() }),
      kvcache: () => ({ kvcache: report('no GPT')() }),
    },
  };
}

const lib = /^nabla(-relaxed|-winograd|-\d+t)?$/.test(library)
  ? await nablaWorkloads()
  : library.startsWith('tfjs-')
    ? await tfjsWorkloads(library.slice(5))
    : null;
if (!lib) throw new Error(`attention.mjs: unknown library ${library}`);
const fn = lib.workloads[workload];
if (!fn) throw new Error(`attention.mjs: unknown workload ${workload}`);
const mem = rssSampler();
const clock = meter();
const out = fn(mem);
const { wall, busy } = clock.read();
writeFileSync(
  resultPath,
  JSON.stringify(
    {
      library,
      version: lib.version,
      workload,
      ...out,
      cpu: { wallSeconds: wall / 1000, busy },
      memory: { ...mem.report(), ...lib.memory() },
    },
    null,
    2,
  ),
);
