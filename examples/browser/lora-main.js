// The LoRA page: sends the settings to the worker, charts the pretraining and fine-tuning
// losses it reports with the test scores after each epoch, shows P(spam) for the typed text,
// and saves, loads and downloads the adapter.
import * as nb from '/dist/index.js';
import { Chart } from './chart.js';

const $ = (id) => document.getElementById(id);
const client = nb.worker.connect(new Worker('./lora-worker.js', { type: 'module' }));
const pretrainChart = new Chart($('pretrain-chart'), {
  title: 'Pretraining loss (nats per character)',
  series: { train: { color: '#3b6fb6' }, 'uniform (ln V)': { color: '#999', dashed: true } },
});
const finetuneChart = new Chart($('finetune-chart'), {
  title: 'Fine-tuning: loss and test accuracy',
  series: {
    loss: { color: '#3b6fb6' },
    'test accuracy': { color: '#2c9d4b', dots: true },
    'test F1': { color: '#d2662c', dots: true },
  },
});
const PRETRAIN = ['chars', 'embd', 'layers', 'heads', 'context', 'batch', 'steps', 'lr'];
const FINETUNE = ['r', 'alpha', 'epochs', 'ftBatch', 'ftLr'];

function status(message, isError = false) {
  $('status').textContent = message;
  $('status').className = isError ? 'error' : '';
}

const setting = (id) => Number($(id).value);
const clearData = (id) => Object.keys($(id).dataset).forEach((k) => delete $(id).dataset[k]);
let job = null; // the AbortController of the running job
let hasBase = false;
let hasModel = false;

function setState(state) {
  document.body.dataset.state = state;
  const idle = state === 'idle';
  $('pretrain').disabled = !idle;
  $('finetune').disabled = !idle || !hasBase;
  $('stop').disabled = state !== 'pretraining' && state !== 'finetuning';
  for (const id of ['classify', 'save', 'download']) $(id).disabled = !idle || !hasModel;
  $('load').disabled = !idle;
}

/** Runs one worker job with the page busy; errors go to the status line. */
async function run(state, label, fn) {
  job = new AbortController();
  setState(state);
  try {
    await fn(job.signal);
  } catch (e) {
    if (e.name === 'AbortError') status(`${label} stopped`);
    else status(`${label} failed: ${e.message}`, true);
  } finally {
    job = null;
    setState('idle');
  }
}

$('stop').addEventListener('click', () => job?.abort());

// ---------------------------------------------------------------- pretraining

let smooth = { value: 0, weight: 0 }; // a debiased running mean of the per-step loss
const running = (loss) => {
  smooth = { value: 0.9 * smooth.value + 0.1 * loss, weight: 0.9 * smooth.weight + 0.1 };
  return smooth.value / smooth.weight;
};

$('pretrain').addEventListener('click', () =>
  run('pretraining', 'pretraining', async (signal) => {
    const config = Object.fromEntries(PRETRAIN.map((k) => [k, setting(k)]));
    pretrainChart.reset(config.steps);
    smooth = { value: 0, weight: 0 };
    clearData('pretrain-text');
    $('pretrain-text').textContent = '';
    status('pretraining the base model…');
    const tensors = [];
    const done = await client.run('pretrain', config, {
      signal,
      onProgress: (p) => {
        if (p.kind === 'start') {
          const ln = Math.log(p.vocab);
          pretrainChart.add('uniform (ln V)', 0, ln);
          pretrainChart.add('uniform (ln V)', p.steps, ln);
          return;
        }
        const mean = running(p.loss);
        tensors.push(p.tensors);
        pretrainChart.add('train', p.step, mean);
        $('pretrain-progress').value = p.step / p.steps;
        $('pretrain-text').textContent =
          `step ${p.step}/${p.steps} · loss ${mean.toFixed(3)} · ${p.seconds.toFixed(1)} s`;
      },
    });
    hasBase = true;
    hasModel = false;
    Object.assign($('pretrain-text').dataset, {
      loss: String(running(done.loss)),
      steps: String(done.step),
      seconds: String(done.seconds),
      checksum: done.checksum,
      tensors: JSON.stringify(tensors),
    });
    $('pretrain-text').textContent =
      `base: ${done.parameters.toLocaleString()} parameters · ${done.step} steps in ` +
      `${done.seconds.toFixed(1)} s · loss ${running(done.loss).toFixed(3)} (ln 96 = ` +
      `${Math.log(96).toFixed(3)}) · weights checksum ${done.checksum} · saved to IndexedDB`;
    status('base model ready · press Fine-tune');
  }),
);

// ---------------------------------------------------------------- fine-tuning

$('finetune').addEventListener('click', () =>
  run('finetuning', 'fine-tuning', async (signal) => {
    const config = {
      r: setting('r'),
      alpha: setting('alpha'),
      epochs: setting('epochs'),
      batch: setting('ftBatch'),
      lr: setting('ftLr'),
    };
    const info = await client.run('data');
    $('data-info').textContent =
      `data: ${info.train} training emails (${info.trainSpam} spam), ${info.test} held-out ` +
      `test emails (${info.testSpam} spam); subject + first 300 characters · ${info.source}`;
    $('data-info').dataset.test = String(info.test);
    $('data-info').dataset.testSpam = String(info.testSpam);
    clearData('finetune-text');
    clearData('test-scores');
    $('finetune-text').textContent = '';
    $('test-scores').textContent = '';
    smooth = { value: 0, weight: 0 };
    const history = [];
    status('fine-tuning with LoRA…');
    const done = await client.run('finetune', config, {
      signal,
      onProgress: (p) => {
        if (p.kind === 'start') {
          finetuneChart.reset(p.steps);
          hasModel = true;
          $('params').textContent =
            `trainable / total parameters (nn.summary): ${p.trainable.toLocaleString()} / ` +
            `${p.total.toLocaleString()} (${p.percent.toFixed(2)}%) · base checksum ${p.checksum}`;
          Object.assign($('params').dataset, {
            trainable: String(p.trainable),
            total: String(p.total),
          });
        } else if (p.kind === 'step') {
          const mean = running(p.loss);
          finetuneChart.add('loss', p.step, mean);
          $('finetune-progress').value = p.step / p.steps;
          $('finetune-text').textContent =
            `epoch ${p.epoch} · step ${p.step}/${p.steps} · loss ${mean.toFixed(3)} · ` +
            `lr ${p.lr.toExponential(2)} · ${p.seconds.toFixed(1)} s`;
        } else {
          finetuneChart.add('test accuracy', p.step, p.accuracy);
          finetuneChart.add('test F1', p.step, p.f1);
          history.push([p.epoch, p.accuracy, p.f1, p.tensors]);
          $('test-scores').dataset.history = JSON.stringify(history);
          $('test-scores').textContent = history
            .map(([e, a, f]) => `epoch ${e}: test accuracy ${a.toFixed(3)}, F1 ${f.toFixed(3)}`)
            .join(' · ');
        }
      },
    });
    Object.assign($('finetune-text').dataset, {
      seconds: String(done.seconds),
      accuracy: String(done.accuracy),
      f1: String(done.f1),
      checksumBefore: done.checksumBefore,
      checksumAfter: done.checksumAfter,
      baseChecksum: done.baseChecksum,
      probabilities: JSON.stringify(done.probabilities),
    });
    $('finetune-text').textContent =
      `fine-tuned ${done.step} steps in ${done.seconds.toFixed(1)} s · test accuracy ` +
      `${done.accuracy.toFixed(3)}, precision ${done.precision.toFixed(3)}, recall ` +
      `${done.recall.toFixed(3)}, F1 ${done.f1.toFixed(3)} · base checksum after ` +
      `${done.checksumAfter} (${done.checksumAfter === done.checksumBefore ? 'unchanged' : 'CHANGED'})`;
    const { tensors } = await client.run('memory');
    $('finetune-text').dataset.tensors = String(tensors);
    status(`fine-tuned in ${done.seconds.toFixed(1)} s · ${tensors} live tensors in the worker`);
    await classify();
  }),
);

// ---------------------------------------------------------------- classify

async function classify() {
  if (!hasModel) return;
  const text = $('text').value;
  const { probabilities } = await client.run('classify', { texts: [text] });
  // A reply for older text (typing went on) is dropped: the next one is on its way.
  if ($('text').value !== text) return;
  $('pspam').textContent = probabilities[0].toFixed(3);
  $('pspam').dataset.value = String(probabilities[0]);
  $('pspam').dataset.text = text;
}

let debounce = 0;
$('text').addEventListener('input', () => {
  clearTimeout(debounce);
  debounce = setTimeout(() => {
    if (document.body.dataset.state === 'idle') classify().catch((e) => status(e.message, true));
  }, 250);
});
$('classify').addEventListener('click', () => run('classifying', 'classifying', classify));

// ---------------------------------------------------------------- the adapter

$('save').addEventListener('click', () =>
  run('saving', 'saving', async () => {
    const saved = await client.run('save');
    $('adapter-info').textContent =
      `saved ${saved.names.length} tensors under "${saved.key}" in IndexedDB ` +
      `(r ${saved.config.r}, lora_alpha ${saved.config.lora_alpha}, targets ` +
      `${saved.config.target_modules.join(', ')}, modules_to_save ${saved.config.modules_to_save})`;
    $('adapter-info').dataset.names = JSON.stringify(saved.names);
    status('adapter saved to IndexedDB');
  }),
);

$('load').addEventListener('click', () =>
  run('loading', 'loading', async () => {
    const loaded = await client.run('load');
    hasBase = true;
    hasModel = true;
    Object.assign($('adapter-info').dataset, {
      loadedProbabilities: JSON.stringify(loaded.probabilities),
      loadedChecksum: loaded.checksum,
    });
    $('adapter-info').textContent =
      `loaded the base and the adapter from IndexedDB into a fresh model · test accuracy ` +
      `${loaded.accuracy.toFixed(3)}, F1 ${loaded.f1.toFixed(3)} · base checksum ${loaded.checksum}`;
    const { tensors } = await client.run('memory');
    $('adapter-info').dataset.tensors = String(tensors);
    status(`adapter loaded · ${tensors} live tensors in the worker`);
    await classify();
  }),
);

$('download').addEventListener('click', () =>
  run('saving', 'download', async () => {
    const { bytes, config } = await client.run('download');
    for (const [blob, name] of [
      [new Blob([bytes]), 'adapter_model.safetensors'],
      [new Blob([config], { type: 'application/json' }), 'adapter_config.json'],
    ]) {
      const a = Object.assign(document.createElement('a'), {
        href: URL.createObjectURL(blob),
        download: name,
      });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 30_000);
    }
    status('downloaded adapter_model.safetensors and adapter_config.json');
  }),
);

// ---------------------------------------------------------------- start

// Settings can come from the address: lora.html?steps=100&embd=32&layers=1&epochs=2
const params = new URLSearchParams(location.search);
for (const id of [...PRETRAIN, ...FINETUNE]) if (params.has(id)) $(id).value = params.get(id);

await client.ready;
setState('idle');
status('ready · press Pretrain (or Load, if an adapter was saved before)');
