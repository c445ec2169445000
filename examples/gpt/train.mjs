// Pretrain a small GPT from scratch on the Brown corpus, then sample from it.
//
//   npm run gpt                      (build, then this file with its defaults: ~18 minutes here)
//   node examples/gpt/train.mjs --tokenizer char --max-iters 300 --n-embd 64
//   node examples/gpt/train.mjs --resume           (continue the run saved in --out)
//
// Data: Brown (examples/data/brown.mjs); every 20th sample is held out for validation.
// Tokenizer: a byte-level BPE trained on the training split (examples/tokenizers/bpe.mjs, run
// through @huggingface/tokenizers) or characters (--tokenizer char).
// Model: a small nn.GPT2LMHeadModel: token + position embeddings, pre-LN blocks of causal
// attention and a GELU MLP, a head tied to the token embedding. Training: AdamW (weight decay
// on 2-D weights only, as nanoGPT), linear warmup then cosine decay, gradient clipping at 1,
// gradient accumulation, validation every --eval-every steps with early stopping, and a
// checkpoint (model, optimizer, scheduler, RNG) after every validation, so --resume continues
// exactly where it stopped.
// Sampling: model.generate (temperature, top-k, top-p, key/value cache) via generate.mjs.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as nb from 'nabla';
import { loadBrown } from '../data/brown.mjs';
import { loadTokenizer, saveTokenizerJson, toTokenizerJson, trainBPE } from '../tokenizers/bpe.mjs';
import { CharTokenizer } from '../tokenizers/char.mjs';
import { generateIds } from './generate.mjs';

const { values: args } = parseArgs({
  options: {
    tokenizer: { type: 'string', default: 'bpe' }, // bpe | char
    vocab: { type: 'string', default: '4096' }, // BPE vocabulary size
    chars: { type: 'string', default: '0' }, // 0: the whole corpus
    'n-embd': { type: 'string', default: '128' },
    'n-layer': { type: 'string', default: '4' },
    'n-head': { type: 'string', default: '4' },
    block: { type: 'string', default: '128' }, // context length (nPositions)
    dropout: { type: 'string', default: '0' },
    batch: { type: 'string', default: '8' }, // sequences per micro-batch
    accum: { type: 'string', default: '2' }, // micro-batches per optimizer step
    'max-iters': { type: 'string', default: '1200' },
    lr: { type: 'string', default: '2e-3' },
    'min-lr-ratio': { type: 'string', default: '0.1' }, // cosine decays to lr · this
    warmup: { type: 'string', default: '100' },
    'weight-decay': { type: 'string', default: '0.1' },
    clip: { type: 'string', default: '1' },
    'eval-every': { type: 'string', default: '100' },
    'eval-batches': { type: 'string', default: '20' },
    patience: { type: 'string', default: '5' }, // validations without improvement
    out: { type: 'string', default: 'examples/gpt/run' }, // checkpoint + tokenizer folder
    resume: { type: 'boolean', default: false },
    'stop-after': { type: 'string', default: '0' }, // save and exit after this step (tests)
    sample: { type: 'string', default: '200' }, // new tokens to generate
    prompt: { type: 'string', default: 'The ' },
    temperature: { type: 'string', default: '0.8' },
    'top-k': { type: 'string', default: '50' },
    'top-p': { type: 'string', default: '0.95' },
    seed: { type: 'string', default: '0' },
    progress: { type: 'string', default: 'auto' }, // auto | bar | lines | silent
    json: { type: 'boolean', default: false }, // one JSON summary line at the end
  },
});
const num = (k) => {
  const v = Number(args[k]);
  if (!Number.isFinite(v)) throw new Error(`--${k}: expected a number, got ${args[k]}`);
  return v;
};
const B = num('batch');
const T = num('block');
const accum = num('accum');
const maxIters = num('max-iters');
const progressMode = args.json ? 'silent' : args.progress;
const log = progressMode === 'silent' ? () => {} : (...a) => console.log(...a);

await nb.init();
nb.manualSeed(num('seed'));
mkdirSync(args.out, { recursive: true });
const ckptPath = join(args.out, 'checkpoint.safetensors');
const bestPath = join(args.out, 'best.safetensors');
if (args.resume && !existsSync(ckptPath)) throw new Error(`--resume: no checkpoint at ${ckptPath}`);

// ------------------------------------------------------------------ data and tokenizer
let text = loadBrown();
if (num('chars') > 0) text = text.slice(0, num('chars'));
// Brown's samples are separated by blank lines; hold out every 20th (or the last tenth of a
// short text), so validation covers every genre.
const samples = text.split('\n\n');
let trainText;
let valText;
if (samples.length >= 20) {
  trainText = samples.filter((_, i) => i % 20 !== 10).join('\n\n');
  valText = samples.filter((_, i) => i % 20 === 10).join('\n\n');
} else {
  const cut = Math.floor(text.length * 0.9);
  [trainText, valText] = [text.slice(0, cut), text.slice(cut)];
}

let tokenizer;
const t0 = performance.now();
const tokPath = join(args.out, args.tokenizer === 'char' ? 'chars.json' : 'tokenizer.json');
if (args.tokenizer === 'char') {
  tokenizer = args.resume ? CharTokenizer.load(tokPath) : CharTokenizer.train(trainText);
  if (!args.resume) tokenizer.save(tokPath);
} else if (args.tokenizer === 'bpe') {
  if (!args.resume) {
    const { merges } = trainBPE(trainText, { vocabSize: num('vocab') });
    saveTokenizerJson(tokPath, toTokenizerJson(merges));
  }
  tokenizer = loadTokenizer(tokPath);
} else throw new Error(`--tokenizer: expected bpe or char, got ${args.tokenizer}`);
const trainIds = tokenizer.encode(trainText);
const valIds = tokenizer.encode(valText);
const V = tokenizer.vocabSize;
log(
  `Brown: ${trainText.length} + ${valText.length} characters → ${trainIds.length} + ${valIds.length} tokens ` +
    `(${args.tokenizer}, vocabulary ${V}, ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
);
const valBytesPerToken = Buffer.byteLength(valText) / valIds.length;

/** Deterministic per (seed, step, micro-batch) window starts, so a resumed run sees the same batches. */
function windows(step, micro) {
  let s = (num('seed') * 1_000_003 + step * 7919 + micro * 104_729) >>> 0;
  const next = () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: B }, () => Math.floor(next() * (trainIds.length - T - 1)));
}

/** Inputs and next-token targets, [B, T] int32 each, for window starts `starts` in `ids`. */
function batch(ids, starts) {
  const x = new Int32Array(starts.length * T);
  const y = new Int32Array(starts.length * T);
  starts.forEach((o, b) => {
    x.set(ids.subarray(o, o + T), b * T);
    y.set(ids.subarray(o + 1, o + T + 1), b * T);
  });
  const shape = [starts.length, T];
  return [nb.tensor(x, { shape, dtype: 'int32' }), nb.tensor(y, { shape, dtype: 'int32' })];
}

// Validation: up to eval-batches · B windows spread evenly over the held-out tokens.
const nVal = Math.min(num('eval-batches') * B, Math.floor((valIds.length - 1) / T));
if (nVal < 1)
  throw new Error(`the validation split has ${valIds.length} tokens, fewer than --block ${T} + 1`);
const valStarts = Array.from({ length: nVal }, (_, i) =>
  Math.floor((i * (valIds.length - T - 1)) / Math.max(1, nVal - 1)),
);

// ------------------------------------------------------------------ model and optimizer
const dropout = num('dropout');
const config = new nb.nn.GPT2Config({
  vocabSize: V,
  nPositions: T,
  nEmbd: num('n-embd'),
  nLayer: num('n-layer'),
  nHead: num('n-head'),
  residPdrop: dropout,
  embdPdrop: dropout,
  attnPdrop: dropout,
});
const model = new nb.nn.GPT2LMHeadModel(config);
const params = model.parameters();
const nParams = params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0);
const { nEmbd, nLayer, nHead } = config;
log(
  `GPT2LMHeadModel: ${nLayer} layers, width ${nEmbd}, ${nHead} heads, context ${T}, ${nParams} parameters`,
);

// nanoGPT's rule: decay the 2-D weights (matmuls and embeddings), not biases or LayerNorm gains.
const optimizer = new nb.optim.AdamW(
  [
    { params: params.filter((p) => p.ndim >= 2), weightDecay: num('weight-decay') },
    { params: params.filter((p) => p.ndim < 2), weightDecay: 0 },
  ],
  { lr: num('lr'), betas: [0.9, 0.95] },
);
// Linear warmup to lr, then a cosine down to lr · min-lr-ratio at max-iters.
const warmup = num('warmup');
const minRatio = num('min-lr-ratio');
const schedule = (step) => {
  if (step < warmup) return (step + 1) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, maxIters - warmup));
  return minRatio + 0.5 * (1 - minRatio) * (1 + Math.cos(Math.PI * progress));
};
const scheduler = new nb.optim.LambdaLR(optimizer, schedule);

let state = { step: 0, best: Infinity, bestStep: 0, bad: 0, history: [], losses: [], seconds: 0 };
if (args.resume) {
  state = nb.train.loadCheckpoint(readFileSync(ckptPath), { model, optimizer, scheduler }).extra;
  log(`resumed from ${ckptPath} at step ${state.step}`);
}
const save = () =>
  writeFileSync(
    ckptPath,
    nb.train.saveCheckpoint({ model, optimizer, scheduler }, { epoch: 0, extra: state }),
  );

// ------------------------------------------------------------------ training
const lossOf = (x, y) =>
  nb.nn.functional.crossEntropy(
    model.forward(x, { useCache: false }).logits.reshape([-1, V]),
    y.reshape([-1]),
  );

/** Mean validation loss in nats per token. */
function validate() {
  model.eval();
  let total = 0;
  nb.noGrad(() => {
    for (let i = 0; i < nVal; i += B) {
      const starts = valStarts.slice(i, i + B);
      const [x, y] = batch(valIds, starts);
      total += lossOf(x, y).item() * starts.length;
    }
  });
  model.train();
  return total / nVal;
}

const tty = progressMode === 'bar' || (progressMode === 'auto' && process.stdout.isTTY);
function drawBar(step, loss, tokensPerSec, eta) {
  const width = 30;
  const filled = Math.round((width * step) / maxIters);
  const bar =
    '='.repeat(filled) + (filled < width ? '>' : '') + ' '.repeat(Math.max(0, width - filled - 1));
  process.stdout.write(
    `\r\x1b[2K[${bar}] ${step}/${maxIters} loss ${loss.toFixed(3)} · ${Math.round(tokensPerSec)} tok/s · ${Math.round(eta)} s left`,
  );
}

const stopAfter = num('stop-after');
let stopped = false;
let windowStart = performance.now();
let windowTokens = 0;
let lastDraw = 0;
while (state.step < maxIters && !stopped) {
  optimizer.zeroGrad();
  let stepLoss = 0;
  for (let m = 0; m < accum; m++) {
    const [x, y] = batch(trainIds, windows(state.step, m));
    const loss = lossOf(x, y).div(accum); // the gradients of one step sum to the mean over micro-batches
    loss.backward();
    stepLoss += loss.item();
  }
  nb.nn.utils.clipGradNorm(params, num('clip'));
  optimizer.step();
  scheduler.step();
  state.step++;
  state.losses.push(stepLoss);
  windowTokens += B * T * accum;
  const now = performance.now();
  const rate = windowTokens / ((now - windowStart) / 1000);
  if (tty && (now - lastDraw > 200 || state.step === maxIters)) {
    drawBar(state.step, stepLoss, rate, (maxIters - state.step) * ((B * T * accum) / rate));
    lastDraw = now;
  }
  if (state.step % num('eval-every') === 0 || state.step === maxIters) {
    const valLoss = validate();
    state.seconds += (performance.now() - windowStart) / 1000;
    const entry = { step: state.step, trainLoss: stepLoss, valLoss, tokensPerSec: rate };
    state.history.push(entry);
    if (tty) process.stdout.write('\r\x1b[2K');
    log(
      `step ${state.step}: train ${stepLoss.toFixed(4)}, validation ${valLoss.toFixed(4)} nats/token, ` +
        `lr ${optimizer.paramGroups[0].lr.toExponential(2)}, ${Math.round(rate)} tokens/s`,
    );
    if (valLoss < state.best) {
      Object.assign(state, { best: valLoss, bestStep: state.step, bad: 0 });
      await nb.io.saveFile(bestPath, model.stateDict(), { step: String(state.step) });
    } else if (++state.bad >= num('patience')) {
      log(`early stopping: no improvement for ${state.bad} validations`);
      stopped = true;
    }
    save();
    windowStart = performance.now();
    windowTokens = 0;
  } else if (state.step === stopAfter) {
    state.seconds += (performance.now() - windowStart) / 1000;
    save();
  }
  if (state.step === stopAfter) break;
}
if (tty) process.stdout.write('\r\x1b[2K');

// ------------------------------------------------------------------ result and sample
let sample = '';
if (state.step !== stopAfter) {
  model.loadStateDict(await nb.io.loadFile(bestPath));
  const bitsPerByte = state.best / Math.LN2 / valBytesPerToken;
  log(
    `\nbest validation loss ${state.best.toFixed(4)} nats/token (${args.tokenizer}, vocabulary ${V}; ` +
      `${bitsPerByte.toFixed(3)} bits/byte) at step ${state.bestStep}; ${state.step} steps, ` +
      `${(state.seconds / 60).toFixed(1)} minutes of training`,
  );
  if (num('sample') > 0) {
    model.eval();
    const opts = {
      maxNewTokens: num('sample'),
      temperature: num('temperature'),
      topK: num('top-k'),
      topP: num('top-p'),
    };
    sample = tokenizer.decode(generateIds(model, Array.from(tokenizer.encode(args.prompt)), opts));
    log(
      `\nsample (temperature ${opts.temperature}, top-k ${opts.topK}, top-p ${opts.topP}):\n${sample}\n`,
    );
  }
}
if (args.json) {
  console.log(
    JSON.stringify({
      steps: state.step,
      bestValLoss: state.best,
      bestStep: state.bestStep,
      valBytesPerToken,
      vocabSize: V,
      params: nParams,
      seconds: state.seconds,
      history: state.history,
      losses: state.losses,
      sample,
    }),
  );
}
