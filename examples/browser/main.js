// The demo page: starts the worker, draws its progress, sends drawings for prediction, and
// saves and loads weights (download, IndexedDB, file). nabla runs here only to convert
// weights between the worker's safetensors bytes and browser storage.
import * as nb from '/dist/index.js';
import { Chart } from './chart.js';
import { drawingPad, showInput, toMnist } from './draw.js';

const $ = (id) => document.getElementById(id);
const STORAGE_KEY = 'mnist-mlp';

const client = nb.worker.connect(new Worker('./worker.js', { type: 'module' }));
const lossChart = new Chart($('loss-chart'), {
  title: 'Loss',
  series: { train: { color: '#3b6fb6' }, validation: { color: '#d2662c', dots: true } },
});
const accChart = new Chart($('acc-chart'), {
  title: 'Accuracy',
  series: { train: { color: '#3b6fb6' }, validation: { color: '#d2662c', dots: true } },
  yRange: [0, 1],
  format: (v) => `${Math.round(v * 100)}%`,
});

function status(message, isError = false) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

// ---------------------------------------------------------------- training

let controller = null;
// Running means within an epoch → means over just the batches since the last report.
let window_ = { epoch: -1, samples: 0, loss: 0, acc: 0 };

function onProgress(p) {
  if (p.kind === 'status') return status(p.message);
  if (p.kind === 'validation') {
    lossChart.add('validation', p.x, p.loss);
    accChart.add('validation', p.x, p.accuracy);
    $('val-acc').textContent = `validation accuracy ${(100 * p.accuracy).toFixed(2)}%`;
    $('val-acc').dataset.value = String(p.accuracy);
    return;
  }
  if (p.kind !== 'batch') return;
  if (p.epoch !== window_.epoch) window_ = { epoch: p.epoch, samples: 0, loss: 0, acc: 0 };
  const n = p.samples - window_.samples;
  if (n > 0) {
    const x = p.epoch + p.batch / p.batches;
    lossChart.add('train', x, (p.logs.loss * p.samples - window_.loss) / n);
    accChart.add('train', x, (p.logs.accuracy * p.samples - window_.acc) / n);
    window_ = {
      epoch: p.epoch,
      samples: p.samples,
      loss: p.logs.loss * p.samples,
      acc: p.logs.accuracy * p.samples,
    };
  }
  $('progress').value = (p.epoch + p.batch / p.batches) / p.epochs;
  $('progress-text').textContent =
    `epoch ${p.epoch + 1}/${p.epochs} · batch ${p.batch}/${p.batches} · ` +
    `${Math.round(p.samplesPerSecond).toLocaleString()} samples/s · ` +
    `loss ${p.logs.loss.toFixed(4)} · accuracy ${(100 * p.logs.accuracy).toFixed(2)}% · ${p.elapsed.toFixed(1)} s`;
}

async function train() {
  const config = {
    samples: Number($('samples').value),
    epochs: Number($('epochs').value),
    batchSize: Number($('batch').value),
    lr: Number($('lr').value),
    seed: 0,
  };
  controller = new AbortController();
  $('train').disabled = true;
  $('stop').disabled = false;
  lossChart.reset(config.epochs);
  accChart.reset(config.epochs);
  window_ = { epoch: -1, samples: 0, loss: 0, acc: 0 };
  $('progress').value = 0;
  $('val-acc').textContent = '';
  delete $('val-acc').dataset.value;
  document.body.dataset.state = 'training';
  try {
    const history = await client.run('train', config, { onProgress, signal: controller.signal });
    const last = history.accuracy.length - 1;
    status(
      `trained ${last + 1} epochs · train accuracy ${(100 * history.accuracy[last]).toFixed(2)}%`,
    );
  } catch (e) {
    status(
      e.name === 'AbortError' ? 'stopped' : `training failed: ${e.message}`,
      e.name !== 'AbortError',
    );
  } finally {
    $('train').disabled = false;
    $('stop').disabled = true;
    document.body.dataset.state = 'idle';
    predict();
  }
}

$('train').addEventListener('click', train);
$('stop').addEventListener('click', () => controller?.abort());

// ---------------------------------------------------------------- drawing

let predicting = false;
let again = false;

async function predict() {
  const pixels = toMnist($('pad'));
  showInput($('input28'), pixels);
  if (!pixels) return showProbabilities(null);
  // One request at a time; the latest drawing wins.
  if (predicting) return void (again = true);
  predicting = true;
  try {
    const out = await client.run(
      'predict',
      { dtype: 'float32', shape: [1, 784], data: pixels },
      { transfer: [pixels.buffer] },
    );
    showProbabilities(softmax(out.data));
  } catch (e) {
    status(`prediction failed: ${e.message}`, true);
  } finally {
    predicting = false;
    if (again) {
      again = false;
      predict();
    }
  }
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((v) => v / sum);
}

function showProbabilities(probs) {
  const box = $('probs');
  box.replaceChildren();
  if (!probs) {
    $('prediction').textContent = '';
    delete $('prediction').dataset.digit;
    return;
  }
  const best = probs.indexOf(Math.max(...probs));
  $('prediction').textContent = `it's a ${best}`;
  $('prediction').dataset.digit = String(best);
  $('prediction').dataset.probs = JSON.stringify(probs);
  probs.forEach((p, digit) => {
    const cls = digit === best ? 'top' : '';
    const bar = Object.assign(document.createElement('div'), { className: 'bar' });
    bar.style.width = `${Math.max(1, Math.round(220 * p))}px`;
    const cell = Object.assign(document.createElement('div'), { className: cls });
    cell.append(bar);
    box.append(
      Object.assign(document.createElement('div'), { className: cls, textContent: digit }),
      cell,
      Object.assign(document.createElement('div'), {
        className: cls,
        textContent: `${(100 * p).toFixed(1)}%`,
      }),
    );
  });
}

let lastLive = 0;
const pad = drawingPad($('pad'), (done) => {
  // Predict live while drawing (at most every 150 ms), and once the stroke ends.
  const now = performance.now();
  if (done || now - lastLive > 150) {
    lastLive = now;
    predict();
  }
});
$('clear').addEventListener('click', () => {
  pad.clear();
  predict();
});

// ---------------------------------------------------------------- weights

async function withWeights(fn) {
  const tensors = nb.worker.unpackWeights(await client.run('getWeights'));
  try {
    return await fn(tensors);
  } finally {
    Object.values(tensors).forEach((t) => t.dispose());
  }
}

async function sendWeights(stateDict, from) {
  const msg = nb.worker.packWeights(stateDict);
  Object.values(stateDict).forEach((t) => t.dispose());
  await client.run('setWeights', msg, { transfer: [msg.bytes] });
  status(`loaded the weights from ${from}`);
  predict();
}

$('save').addEventListener('click', async () => {
  try {
    const metadata = { model: '784-256-128-10 MLP', savedAt: new Date().toISOString() };
    await withWeights(async (sd) => {
      nb.io.download(sd, 'mnist-mlp.safetensors', metadata);
      await nb.io.saveToIndexedDB(STORAGE_KEY, sd, metadata);
    });
    status('saved: downloaded mnist-mlp.safetensors and stored it in this browser');
  } catch (e) {
    status(`saving failed: ${e.message}`, true);
  }
});

$('load').addEventListener('click', async () => {
  try {
    await sendWeights(await nb.io.loadFromIndexedDB(STORAGE_KEY), 'browser storage');
  } catch (e) {
    status(`loading failed: ${e.message}`, true);
  }
});

$('file').addEventListener('change', async () => {
  const file = $('file').files[0];
  if (!file) return;
  try {
    await sendWeights(await nb.io.fromBlob(file), file.name);
  } catch (e) {
    status(`loading ${file.name} failed: ${e.message}`, true);
  }
});

// ---------------------------------------------------------------- start

// Settings can come from the address: ?samples=10000&epochs=2&batch=64&lr=0.001
for (const [param, id] of [
  ['samples', 'samples'],
  ['epochs', 'epochs'],
  ['batch', 'batch'],
  ['lr', 'lr'],
]) {
  const value = new URLSearchParams(location.search).get(param);
  if (value === null) continue;
  if (id === 'samples' && ![...$('samples').options].some((o) => o.value === value)) {
    $('samples').append(new Option(Number(value).toLocaleString(), value));
  }
  $(id).value = value;
}

await nb.init();
await client.ready;
const saved = await nb.io.listIndexedDB();
status(
  saved.includes(STORAGE_KEY)
    ? 'ready · weights are saved in this browser: Load them, or Train'
    : 'ready · press Train (an untrained model predicts at random)',
);
document.body.dataset.state = 'idle';
