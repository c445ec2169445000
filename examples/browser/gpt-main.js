// The GPT page: starts the worker, sends it the settings, charts the train and validation
// loss it reports, and appends the characters it samples as they arrive.
import * as nb from '/dist/index.js';
import { Chart } from './chart.js';

const $ = (id) => document.getElementById(id);
const client = nb.worker.connect(new Worker('./gpt-worker.js', { type: 'module' }));
const chart = new Chart($('loss-chart'), {
  title: 'Loss (nats per character)',
  series: {
    train: { color: '#3b6fb6' },
    validation: { color: '#d2662c', dots: true },
    'uniform (ln V)': { color: '#999', dashed: true },
  },
});
const TRAIN_SETTINGS = [
  ...['chars', 'embd', 'layers', 'heads', 'context', 'batch', 'steps', 'lr'],
  ...['warmup', 'clip', 'evalEvery'],
];
const SETTINGS = [...TRAIN_SETTINGS, 'prompt', 'length', 'temperature', 'topK'];

function status(message, isError = false) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

const setting = (id) => Number($(id).value);
let trainer = null; // the AbortController of the running job
let sampler = null;

function setState(state) {
  document.body.dataset.state = state;
  const idle = state === 'idle';
  $('train').disabled = !idle;
  $('stop').disabled = state !== 'training';
  $('generate').disabled = !idle || !document.body.dataset.trained;
  $('stop-generate').disabled = state !== 'generating';
}

// ---------------------------------------------------------------- training

let smooth = { value: 0, weight: 0 }; // a debiased running mean of the per-step loss
let validations = []; // [step, loss, the worker's live tensors] of this run

function onTrainProgress(p) {
  if (p.kind === 'start') {
    const ln = Math.log(p.vocab);
    chart.add('uniform (ln V)', 0, ln);
    chart.add('uniform (ln V)', p.steps, ln);
    $('corpus-info').textContent +=
      ` · model: ${p.parameters.toLocaleString()} parameters, ` +
      `uniform loss ln ${p.vocab} = ${ln.toFixed(3)}`;
    $('corpus-info').dataset.uniform = String(ln);
    document.body.dataset.trained = 'true'; // from now on the worker has a model to sample
    return;
  }
  if (p.kind === 'validation') {
    chart.add('validation', p.step, p.loss);
    $('val-loss').textContent = `validation loss ${p.loss.toFixed(4)} at step ${p.step}`;
    $('val-loss').dataset.value = String(p.loss);
    $('val-loss').dataset.step = String(p.step);
    validations.push([p.step, p.loss, p.tensors]);
    $('val-loss').dataset.history = JSON.stringify(validations);
    return;
  }
  smooth = { value: 0.95 * smooth.value + 0.05 * p.loss, weight: 0.95 * smooth.weight + 0.05 };
  const mean = smooth.value / smooth.weight;
  chart.add('train', p.step, mean);
  $('progress').value = p.step / p.steps;
  $('progress-text').textContent =
    `step ${p.step}/${p.steps} · train loss ${mean.toFixed(4)} · lr ${p.lr.toExponential(2)} · ` +
    `${Math.round(p.charsPerSecond).toLocaleString()} characters/s · ${p.seconds.toFixed(1)} s`;
  $('progress-text').dataset.loss = String(mean);
  $('progress-text').dataset.step = String(p.step);
}

async function train() {
  const config = Object.fromEntries(TRAIN_SETTINGS.map((k) => [k, setting(k)]));
  trainer = new AbortController();
  setState('training');
  chart.reset(config.steps);
  smooth = { value: 0, weight: 0 };
  validations = [];
  $('progress').value = 0;
  $('progress-text').textContent = '';
  $('val-loss').textContent = '';
  for (const id of ['progress-text', 'val-loss']) {
    for (const k of Object.keys($(id).dataset)) delete $(id).dataset[k];
  }
  try {
    status('loading the corpus…');
    const info = await client.run('corpus', { chars: config.chars });
    $('corpus-info').textContent =
      `corpus: ${info.chars.toLocaleString()} characters of the Brown corpus ` +
      `(${info.train.toLocaleString()} train, ${info.validation.toLocaleString()} validation), ` +
      `vocabulary of ${info.vocab.length}`;
    $('corpus-info').dataset.vocab = info.vocab;
    status('training…');
    // Stop ends the job after its current step; the model stays, so it can still generate.
    const done = await client.run('train', config, {
      onProgress: onTrainProgress,
      signal: trainer.signal,
    });
    status(
      `trained ${done.step} steps in ${done.seconds.toFixed(1)} s · train loss ` +
        `${done.trainLoss.toFixed(4)} · validation loss ${done.valLoss.toFixed(4)}`,
    );
  } catch (e) {
    if (e.name === 'AbortError') status(`stopped at step ${$('progress-text').dataset.step ?? 0}`);
    else status(`training failed: ${e.message}`, true);
  } finally {
    trainer = null;
    setState('idle');
  }
}

$('train').addEventListener('click', train);
$('stop').addEventListener('click', () => trainer?.abort());

// ---------------------------------------------------------------- generation

async function generate() {
  const prompt = $('prompt').value;
  sampler = new AbortController();
  setState('generating');
  const out = $('sample');
  out.replaceChildren(
    Object.assign(document.createElement('span'), { className: 'prompt', textContent: prompt }),
  );
  const text = document.createTextNode('');
  out.append(text);
  out.dataset.chars = '0';
  delete out.dataset.done;
  const started = performance.now();
  let count = 0;
  try {
    const done = await client.run(
      'generate',
      {
        prompt,
        length: setting('length'),
        temperature: setting('temperature'),
        topK: setting('topK'),
      },
      {
        onProgress: (p) => {
          text.appendData(p.char);
          count++;
          out.dataset.chars = String(count);
          const seconds = (performance.now() - started) / 1000;
          $('sample-info').textContent =
            `${count} characters · ${(count / seconds).toFixed(0)} characters/s`;
        },
        signal: sampler.signal,
      },
    );
    // The worker's live tensors after each run: the same number every time (nothing leaks).
    const { tensors } = await client.run('memory');
    $('sample-info').dataset.tensors = String(tensors);
    status(`generated ${done.text.length} characters · ${tensors} live tensors in the worker`);
  } catch (e) {
    if (e.name === 'AbortError') status('generation stopped');
    else status(`generation failed: ${e.message}`, true);
  } finally {
    out.dataset.done = 'true';
    sampler = null;
    setState('idle');
  }
}

$('generate').addEventListener('click', generate);
$('stop-generate').addEventListener('click', () => sampler?.abort());

// ---------------------------------------------------------------- start

// Settings can come from the address: gpt.html?steps=300&embd=32&layers=1
const params = new URLSearchParams(location.search);
for (const id of SETTINGS) if (params.has(id)) $(id).value = params.get(id);

await client.ready;
setState('idle');
status('ready · press Train');
