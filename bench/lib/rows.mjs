// Turns the children's raw results into comparison rows: one figure per library and nabla's
// ratio against each peer. Ratios read as nabla's advantage, >1 meaning nabla is ahead:
// nabla ÷ peer for rates (GFLOP/s, samples/s), peer ÷ nabla for times and memory.
import { attentionRows } from './attention.mjs';
import { cnnRows } from './cnn.mjs';

export const FORM_LABEL = { AB: 'A·B', AtB: 'Aᵀ·B', ABt: 'A·Bᵀ' };

export function ratio(better, nabla, peer) {
  const ok = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!better || !ok(nabla) || !ok(peer)) return null;
  return better === 'higher' ? nabla / peer : peer / nabla;
}

function withRatios(row, libraries) {
  row.ratios = {};
  for (const peer of libraries) {
    if (peer !== 'nabla') row.ratios[peer] = ratio(row.better, row.values.nabla, row.values[peer]);
  }
  return row;
}

/**
 * `pick(result)` reads one figure out of a library's result for `workload`, or null;
 * `contended(result)` says whether that figure was taken while the process kept waiting for a
 * CPU (too few clean samples, or a single timed run at CPU ÷ wall under 0.9).
 */
function collect(results, libraries, workload, pick, contended = () => false) {
  const values = {};
  const notes = {};
  const flags = {};
  for (const lib of libraries) {
    const r = results[lib]?.[workload];
    const v = r ? pick(r) : null;
    values[lib] = typeof v === 'number' && Number.isFinite(v) ? v : null;
    if (r && values[lib] !== null && contended(r)) flags[lib] = true;
    if (workload === 'epoch' && r?.epoch?.extrapolated) {
      notes[lib] = `extrapolated from ${r.epoch.timedSteps} of ${r.epoch.batches} steps`;
    }
  }
  return { values, notes, contended: flags };
}

function gemmRows(config, results, libraries) {
  return config.matmul.cases.map((c, i) => {
    const { values, contended } = collect(
      results,
      libraries,
      'matmul',
      (r) => r.matmul?.[i]?.gflops,
      (r) => r.matmul?.[i]?.contended,
    );
    const nab = results.nabla?.matmul?.matmul?.[i];
    return withRatios(
      {
        id: `gemm:${c.m}x${c.k}x${c.n}:${c.form}`,
        section: 'gemm',
        group: c.group,
        tag: c.tag,
        form: c.form,
        m: c.m,
        k: c.k,
        n: c.n,
        label: `${c.tag} ${FORM_LABEL[c.form]}`,
        unit: 'GFLOP/s',
        better: 'higher',
        values,
        notes: {},
        contended,
        nablaKernel: nab?.kernelGflops ?? null,
        nablaVia: nab?.via ?? null,
      },
      libraries,
    );
  });
}

const MB = 1024 * 1024;
const mb = (bytes) => bytes / MB;

/** The MLP table; an id's prefix names the workload its figure comes from. */
const MLP_ROWS = [
  {
    id: 'train:samplesPerSec',
    label: 'train step, samples/s',
    unit: 'samples/s',
    better: 'higher',
    pick: (r) => r.train?.samplesPerSec,
    contended: (r) => r.train?.contended,
  },
  {
    id: 'epoch:seconds',
    label: 'MNIST epoch, s',
    unit: 's',
    better: 'lower',
    pick: (r) => r.epoch?.seconds,
    contended: (r) => r.epoch?.busy < 0.9,
  },
  {
    id: 'epoch:testAccuracy',
    label: 'test accuracy after 1 epoch, %',
    unit: '%',
    better: null,
    pick: (r) => (r.epoch?.testAccuracy ?? NaN) * 100,
  },
  {
    id: 'train:peakRss',
    label: 'peak RSS, train step, MB',
    unit: 'MB',
    better: 'lower',
    pick: (r) => mb(r.memory?.peakRss),
  },
  {
    id: 'epoch:peakRss',
    label: 'peak RSS, epoch, MB',
    unit: 'MB',
    better: 'lower',
    pick: (r) => mb(r.memory?.peakRss),
  },
  {
    id: 'train:wasmHeap',
    label: 'wasm heap, train step, MB',
    unit: 'MB',
    better: 'lower',
    pick: (r) => mb(r.memory?.wasmHeapBytes),
  },
  {
    id: 'epoch:wasmHeap',
    label: 'wasm heap, epoch, MB',
    unit: 'MB',
    better: 'lower',
    pick: (r) => mb(r.memory?.wasmHeapBytes),
  },
];

function mlpRows(results, libraries) {
  return MLP_ROWS.map(({ id, label, unit, better, pick, contended: flag }) => {
    const { values, notes, contended } = collect(results, libraries, id.split(':')[0], pick, flag);
    return withRatios(
      { id, section: 'mlp', label, unit, better, values, notes, contended },
      libraries,
    );
  });
}

const CELL_NAME = { lstm: 'LSTM', gru: 'GRU' };

/**
 * The RNN table: per model size, tokens/s and peak memory. A library that cannot train the
 * model as written keeps its reason (`cannot`) next to the figure of the variant it ran.
 */
function rnnRows(config, results, libraries) {
  return config.rnn.cases.flatMap((c) => {
    const workload = `rnn-${c.id}`;
    const name = `${CELL_NAME[c.cell]} ${c.hidden}`;
    const few = (r) => {
      const t = r.rnn;
      return config.rnn.slowTiming[r.library]
        ? `${name}: median of ${t.windows} windows of ${t.stepsPerWindow} steps (${t.stepsRun} steps run)`
        : null;
    };
    const spec = [
      ['tokensPerSec', 'tokens/s', 'tokens/s', 'higher', (r) => r.rnn?.tokensPerSec],
      ['peakRss', 'peak RSS, MB', 'MB', 'lower', (r) => mb(r.memory?.peakRss)],
      ['wasmHeap', 'wasm heap, MB', 'MB', 'lower', (r) => mb(r.memory?.wasmHeapBytes)],
    ];
    return spec.map(([key, what, unit, better, pick], i) => {
      const id = `${workload}:${key}`;
      const { values, contended } = collect(
        results,
        libraries,
        workload,
        pick,
        i === 0 ? (r) => r.rnn?.contended : undefined,
      );
      const notes = {};
      const cannot = {};
      for (const lib of libraries) {
        const r = results[lib]?.[workload];
        if (!r) continue;
        if (i === 0 && few(r)) notes[lib] = few(r);
        if (r.rnn?.cannotTrain) cannot[lib] = { error: r.rnn.cannotTrain, variant: r.rnn.variant };
      }
      const label = `${name}: ${what}`;
      return withRatios(
        {
          id,
          section: 'rnn',
          cell: c.cell,
          hidden: c.hidden,
          label,
          unit,
          better,
          values,
          notes,
          contended,
          cannot,
        },
        libraries,
      );
    });
  });
}

export function buildRows(config, results, libraries) {
  return [
    ...gemmRows(config, results, libraries),
    ...mlpRows(results, libraries),
    ...rnnRows(config, results, libraries),
    ...attentionRows(config, results, libraries),
    ...cnnRows(config, results, libraries),
  ];
}
