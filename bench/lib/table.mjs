// Markdown for the terminal (and the JSON's `markdown` field): one GEMM table, one MLP table,
// the targets, and the notes that say how each figure was taken.
import { attentionMarkdown } from './attention.mjs';
import { cnnMarkdown } from './cnn.mjs';
import { FORM_LABEL } from './rows.mjs';

export function num(v, unit) {
  if (v === null || v === undefined) return '—';
  if (unit === '%') return v.toFixed(2);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function ratioText(r) {
  return r === null ? '' : ` (${r.toFixed(2)}x)`;
}

/**
 * One cell: the figure, a † when it is extrapolated (or from a few steps), and nabla's ratio
 * against this peer. A library that could not train the model says so, and its figure is the
 * variant it ran instead (§).
 */
function cell(row, lib) {
  const v = row.values[lib];
  const cannot = row.cannot?.[lib];
  const why = cannot && row.unit === 'tokens/s' ? `cannot train: ${cannot.error}; ` : '';
  if (v === null) return why ? why.slice(0, -2) : '—';
  const mark =
    (row.notes[lib] ? ' †' : '') + (row.contended?.[lib] ? ' ‡' : '') + (cannot ? ' §' : '');
  return `${why}${num(v, row.unit)}${mark}${lib === 'nabla' ? '' : ratioText(row.ratios[lib])}`;
}

const hasFigures = (rows) => rows.some((r) => Object.values(r.values).some((v) => v !== null));

function table(header, align, lines) {
  return [
    `| ${header.join(' | ')} |`,
    `| ${align.map((a) => (a === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...lines.map((l) => `| ${l.join(' | ')} |`),
  ].join('\n');
}

export function markdown({ rows, libraries, targets, config, meta }) {
  const peers = libraries.filter((l) => l !== 'nabla');
  const gemm = rows.filter((r) => r.section === 'gemm');
  const mlp = rows.filter((r) => r.section === 'mlp');
  const out = [];
  out.push(
    `## nabla benchmark${config.quick ? ' (--quick smoke run: tiny sizes, not comparable)' : ''}`,
  );
  out.push('');
  const load = (l) => l.map((v) => v.toFixed(2)).join(' ');
  out.push(
    `${meta.machine.cpu}, ${meta.machine.cores} cores, Node ${meta.machine.node}; ${meta.date}; run took ${meta.durationSeconds.toFixed(0)} s; load average ${load(meta.machine.loadAverageAtStart)} at start, ${load(meta.loadAverageAtEnd)} at end`,
  );
  out.push(
    `versions: ${libraries.map((l) => `${l} ${meta.versions[l] ?? '?'}`).join(', ')}` +
      (meta.torchThreads ? ` (torch threads: ${meta.torchThreads})` : ''),
  );
  for (const w of meta.warnings ?? []) out.push('', `**WARNING: ${w}.**`);
  out.push('');
  out.push(
    "Ratios `(N.NNx)` are nabla's advantage over that peer: nabla ÷ peer for rates, peer ÷ nabla for times and memory; above 1 means nabla is ahead.",
  );
  out.push('');
  const once = config.matmul.singleRound.filter((l) => libraries.includes(l));
  const rounds =
    config.matmul.rounds > 1
      ? `; best of ${config.matmul.rounds} rounds${once.length ? `, ${once.join(', ')} 1` : ''}`
      : '';
  if (hasFigures(gemm)) gemmSection(out, { gemm, peers, rounds });
  if (hasFigures(mlp)) mlpSection(out, { mlp, peers, config });
  const rnn = rows.filter((r) => r.section === 'rnn');
  if (hasFigures(rnn)) rnnSection(out, { rnn, peers, config });
  out.push(...attentionMarkdown({ rows, libraries, num, ratioText, table }));
  out.push(...cnnMarkdown({ rows, libraries, config, num, ratioText, table }));
  footer(out, { rows, libraries, targets, meta });
  return out.join('\n');
}

function gemmSection(out, { gemm, peers, rounds }) {
  out.push(`### GEMM, GFLOP/s (median${rounds}; higher is better)`);
  out.push('');
  out.push(
    table(
      ['case', 'm×k×n', 'form', 'nabla', 'nabla kernel', ...peers],
      ['l', 'l', 'l', 'r', 'r', ...peers.map(() => 'r')],
      gemm.map((r) => [
        r.tag,
        `${r.m}×${r.k}×${r.n}`,
        FORM_LABEL[r.form],
        cell(r, 'nabla'),
        num(r.nablaKernel, r.unit),
        ...peers.map((p) => cell(r, p)),
      ]),
    ),
  );
  out.push('');
  out.push(
    'Every library through its public op: nabla `nb.matmul(a, b, { transA, transB })` (transposed operands read through strides, no copy); tfjs `tf.matMul(a, b, transposeA, transposeB)`; torch `a.T @ b` / `a @ b.T` (strided views). The "nabla kernel" column calls the wasm export `matmul_f32` directly: its gap to the "nabla" column is the op layer\'s per-call cost. Each figure\'s last timed product is checked against float64.',
  );
}

function mlpSection(out, { mlp, peers, config }) {
  out.push('');
  out.push(
    `### MLP ${config.layers.join('-')} (ReLU, Adam ${config.lr}, cross-entropy, batch ${config.batch})`,
  );
  out.push('');
  out.push(
    table(
      ['metric', 'nabla', ...peers],
      ['l', 'r', ...peers.map(() => 'r')],
      mlp.map((r) => [r.label, cell(r, 'nabla'), ...peers.map((p) => cell(r, p))]),
    ),
  );
  const notes = [
    ...new Set(mlp.flatMap((r) => Object.entries(r.notes).map(([l, n]) => `${l}: ${n}`))),
  ];
  if (notes.length) {
    out.push('');
    out.push(`† ${notes.join('; ')} (no test accuracy for a partial epoch).`);
  }
  out.push('');
  out.push(
    `Train step: median over ${config.train.windows} timed windows (best of ${config.train.rounds} rounds) after ${config.train.warmupSteps} warm-up steps, cycling ${config.train.batches} fixed batches; the timed step is checked (its first call must apply Adam's first update to float64 precision, and the loss must fall over the timed steps). Epoch: ${config.epoch.trainSamples} training samples in the same shuffled order for every library, timed cold from the first step (the shuffled order is made before the clock starts; gathering each batch with the library's own index op is timed), test accuracy on ${config.epoch.testSamples} test samples. Samples during which the timing thread got under 90% of a core are discarded and retaken. Memory: each library and workload in its own process; peak RSS = max(sampled RSS, VmHWM).`,
  );
}

function rnnSection(out, { rnn, peers, config }) {
  const r = config.rnn;
  out.push('');
  out.push(
    `### Character-level RNN: Embedding(${r.vocab}, ${r.embed}) → one LSTM / GRU layer → Linear(hidden, ${r.vocab}), sequence ${r.seq}, batch ${r.batch}, Adam ${r.lr}`,
  );
  out.push('');
  out.push(
    table(
      ['metric', 'nabla', ...peers],
      ['l', 'r', ...peers.map(() => 'r')],
      rnn.map((row) => [row.label, cell(row, 'nabla'), ...peers.map((p) => cell(row, p))]),
    ),
  );
  const few = [
    ...new Set(rnn.flatMap((row) => Object.entries(row.notes).map(([l, n]) => `${l}: ${n}`))),
  ];
  if (few.length) out.push('', `† seconds a step, so a few steps only: ${few.join('; ')}.`);
  const cannot = new Map();
  for (const row of rnn) {
    for (const [lib, c] of Object.entries(row.cannot ?? {})) cannot.set(lib, c);
  }
  for (const [lib, c] of cannot) {
    out.push(
      '',
      `§ ${lib} cannot train the model as written (${c.error}); its figures are the same model with the ${c.variant}, and its ratios compare against that.`,
    );
  }
  out.push('');
  out.push(
    `Tokens/s = batch × sequence per median step time (forward, backward through time, Adam), cycling ${r.batches} fixed token batches from a seeded Markov chain (${r.successors} successors per token), the same for every library; the timed step is checked (its first call must move at least 80% of the weights by Adam's first step, lr, and none by more; the loss must fall over the timed steps). Each library and size in its own process; peak RSS = max(sampled RSS, VmHWM).`,
  );
}

function footer(out, { rows, libraries, targets, meta }) {
  if (rows.some((r) => Object.keys(r.contended ?? {}).length)) {
    out.push('');
    out.push(
      '‡ taken while the process kept waiting for a CPU (other work on the machine): too few samples got the timing thread ≥ 90% of a core, or the single timed epoch got less than that. Read it as pessimistic.',
    );
  }
  const cpu = Object.entries(meta.busy ?? {});
  if (cpu.length) {
    out.push('');
    out.push(
      `Share of each child's wall time its timing thread actually ran (1 = it always had a core): ${cpu.map(([l, [lo, hi]]) => `${l} ${lo.toFixed(2)}–${hi.toFixed(2)}`).join(', ')}.`,
    );
  }
  if (meta.notes.length) out.push('', ...meta.notes);
  if (meta.torchBlas) out.push('', `Native PyTorch's BLAS: ${meta.torchBlas.name}.`);
  const threaded = libraries.filter((l) => /^nabla-\d+t$/.test(l));
  if (threaded.length) {
    out.push(
      '',
      `${threaded.join(', ')}: the nabla child with \`init({ threads: n })\` (the shared-memory core; GEMM, convolution, recurrent cells, attention, pooling, batch and layer norm, softmax, reductions, cross-entropy, strided copies, elementwise ops and the optimizers split over the threads). Its ratio below 1 is the threads' gain.`,
    );
  }
  const torchThreaded = libraries.filter((l) => /^torch-\d+t$/.test(l));
  if (torchThreaded.length) {
    out.push(
      '',
      `${torchThreaded.join(', ')}: native PyTorch with \`torch.set_num_threads(n)\` and its BLAS and OpenMP pinned to n threads (the torch column: one).`,
    );
  }
  if (libraries.includes('nabla-relaxed')) {
    out.push(
      '',
      "nabla runs its plain core (`init({ simd: 'plain' })`); nabla-relaxed is the same child on the relaxed-SIMD core (nabla-relaxed.wasm, fused multiply-add in the GEMM; Node 20 with --experimental-wasm-relaxed-simd). Its ratio is plain ÷ relaxed as everywhere: below 1 is the relaxed build's gain.",
    );
  }
  if (libraries.includes('nabla-winograd')) {
    out.push(
      '',
      'nabla-winograd is the nabla child with `nb.backends.conv.winograd = true` (off by default): 3×3 stride-1 convolutions with 16+ channels on small planes run by Winograd F(2×2, 3×3), so only rows with such convolutions (the BasicBlock) differ from nabla.',
    );
  }
  if (meta.repo) {
    const { commit, sourcesEdited } = meta.repo;
    out.push(
      '',
      `nabla at ${commit ? `commit ${commit.slice(0, 12)}${sourcesEdited ? ' (with uncommitted edits)' : ''}` : 'an unknown commit (not a git checkout)'}; machine: ${meta.machine.cpu}${meta.machine.cpuMHz ? ` at ${Math.round(meta.machine.cpuMHz)} MHz` : ''}, ${meta.machine.cores} cores.`,
    );
  }
  if (meta.skipped.length) {
    out.push('');
    out.push(meta.skipped.map((s) => `Skipped: ${s}`).join('\n'));
  }
  if (targets.length) {
    out.push('');
    out.push('### Targets');
    out.push('');
    out.push(
      table(
        ['target', 'measured', 'met'],
        ['l', 'l', 'l'],
        targets.map((t) => [t.target, t.measured, t.met === null ? '—' : t.met ? 'yes' : 'no']),
      ),
    );
  }
}
