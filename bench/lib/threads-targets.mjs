// Issue 14's scaling targets, read off the threaded columns of this run (`--threads n`): each
// workload's gain on n threads over nabla's one-thread column, and the MNIST epoch of nabla's
// best thread count against native PyTorch's best.

/** [row id, goal on 2 threads]: the issue's targets for this 2-core machine. */
const SCALING = [
  ['gemm:512x512x512:AB', 1.7],
  ['gemm:1024x1024x1024:AB', 1.7],
  ['train:samplesPerSec', 1.5],
  ['rnn-lstm128:tokensPerSec', 1.4],
  ['rnn-lstm256:tokensPerSec', 1.4],
  ['rnn-gru256:tokensPerSec', null],
  ['gpt:tokensPerSec', 1.4],
  ['cnn-lenet:samplesPerSec', 1.4],
  ['cnn-resblock:samplesPerSec', 1.4],
  ['epoch:seconds', null],
  ['sdpa:T256:ms', null],
  ['sdpa:T1024:ms', null],
];

/** `n` threads' gain over one thread on `row` (>1 is faster), or null. */
function gain(row, column) {
  const [one, many] = [row.values.nabla, row.values[column]];
  const ok = (v) => typeof v === 'number' && Number.isFinite(v) && v > 0;
  if (!ok(one) || !ok(many)) return null;
  return row.better === 'higher' ? many / one : one / many;
}

/** The smallest figure among `columns` of a lower-is-better row, with its column. */
function fastest(row, columns) {
  let best = null;
  for (const c of columns) {
    const v = row?.values[c];
    if (typeof v === 'number' && v > 0 && (best === null || v < best.v)) best = { c, v };
  }
  return best;
}

export function threadTargets(rows, libraries) {
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const out = [];
  const threaded = libraries.filter((l) => /^nabla-\d+t$/.test(l));
  for (const column of threaded) {
    const n = Number(column.slice(6, -1));
    for (const [id, goal] of SCALING) {
      const row = byId[id];
      const g = row ? gain(row, column) : null;
      if (row === undefined) continue;
      const want = n === 2 ? goal : null;
      out.push({
        target: `${row.label}: ${n} threads ${want === null ? 'vs one' : `≥ ${want}x one`}`,
        measured: g === null ? 'n/a' : `${g.toFixed(2)}x`,
        value: g,
        met: g === null || want === null ? null : g >= want,
      });
    }
  }
  const epoch = byId['epoch:seconds'];
  const torchColumns = libraries.filter((l) => /^torch(-\d+t)?$/.test(l));
  if (epoch && threaded.length && torchColumns.length) {
    const ours = fastest(epoch, ['nabla', ...threaded]);
    const theirs = fastest(epoch, torchColumns);
    out.push({
      target: "MNIST epoch at nabla's best thread count ≤ native PyTorch's at its best",
      measured:
        ours && theirs
          ? `${ours.v.toFixed(2)} s (${ours.c}) vs ${theirs.v.toFixed(2)} s (${theirs.c})`
          : 'n/a',
      value: ours && theirs ? theirs.v / ours.v : null,
      met: ours && theirs ? ours.v <= theirs.v : null,
    });
  }
  return out;
}
