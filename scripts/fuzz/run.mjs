// `npm run fuzz -- --seconds N --seed S [--surface name] [--case i] [--max-alloc-mb M]
//   [--lib path/to/index.js]` (default: the built dist/, which `npm run fuzz` rebuilds first)
//
// Runs the seeded fuzz cases of scripts/fuzz/core.mjs against the built library (dist/), each
// surface in a child process for its share of the time. A per-case watchdog kills a child that
// stops reporting (a hang) and a child that dies (a crash, counted with traps) is restarted at
// the next case. Prints the table surface | cases | typed errors | ... and every case that
// ended other than correctly or in a typed error, with the command that replays it.
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { COLUMNS, SURFACES, emptyCounts, runCase, table } from './core.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const seed = Number(opt('seed', 1));
const seconds = Number(opt('seconds', 60));
const hangMs = Number(opt('hang-ms', 60_000));
const maxAllocBytes = Number(opt('max-alloc-mb', 64)) * 2 ** 20;
const self = fileURLToPath(import.meta.url);

if (args.includes('--child')) await child();
else await parent();

/** Runs cases from --start until the deadline, reporting each before and after it runs. */
async function child() {
  const lib = opt('lib');
  const nb = await import(lib ? pathToFileURL(lib).href : '../../dist/index.js');
  await nb.init();
  const surface = opt('surface');
  const deadline = Number(opt('deadline'));
  const only = opt('case');
  for (let i = Number(opt('start', 0)); ; i++) {
    if (only !== undefined && i !== Number(only)) break;
    if (Date.now() >= deadline) break;
    process.send({ type: 'start', index: i });
    const r = runCase(nb, seed, surface, i, { maxAllocBytes });
    process.send({ type: 'done', index: i, ...r });
    // let the parent's messages and timers run between cases
    await new Promise((res) => setImmediate(res));
  }
  process.disconnect();
}

function runSurface(surface, budgetMs, counts, failures) {
  const deadline = Date.now() + budgetMs;
  const only = opt('case');
  return new Promise((resolve) => {
    const start = (from) => {
      if (Date.now() >= deadline && only === undefined) return resolve();
      const extra = only === undefined ? [] : ['--case', only];
      const c = fork(
        self,
        [
          '--child',
          '--surface',
          surface,
          '--start',
          String(from),
          '--deadline',
          String(deadline),
          '--seed',
          String(seed),
          '--max-alloc-mb',
          String(maxAllocBytes / 2 ** 20),
          ...(opt('lib') ? ['--lib', opt('lib')] : []),
          ...extra,
        ],
        { execArgv: ['--stack-size=984'] },
      );
      let current = null;
      let timer = null;
      let next = from;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          record(surface, current, 'hang', `no answer for ${hangMs} ms`, counts, failures);
          next = current + 1;
          current = null;
          c.kill('SIGKILL');
        }, hangMs);
      };
      c.on('message', (m) => {
        if (m.type === 'start') {
          current = m.index;
          arm();
        } else {
          clearTimeout(timer);
          record(surface, m.index, m.outcome, m.detail, counts, failures);
          current = null;
          next = m.index + 1;
        }
      });
      c.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (current !== null) {
          // died inside a case: a crash, counted with the traps
          record(surface, current, 'trap', `process died (${signal ?? code})`, counts, failures);
          next = current + 1;
        }
        if (only !== undefined) return resolve();
        if (code === 0 && current === null && Date.now() >= deadline) return resolve();
        start(next);
      });
    };
    start(Number(opt('start', 0)));
  });
}

function record(surface, index, outcome, detail, counts, failures) {
  const c = counts[surface];
  c.cases++;
  c[outcome] = (c[outcome] ?? 0) + 1;
  if (outcome !== 'ok' && outcome !== 'typed') failures.push({ surface, index, outcome, detail });
}

async function parent() {
  const only = opt('surface');
  const surfaces = only ? [only] : SURFACES;
  const counts = emptyCounts();
  for (const s of Object.keys(counts)) if (!surfaces.includes(s)) delete counts[s];
  const failures = [];
  const t0 = Date.now();
  for (const s of surfaces) {
    await runSurface(s, (seconds * 1000) / surfaces.length, counts, failures);
    console.error(`fuzz: ${s} done (${counts[s].cases} cases)`);
  }
  console.log(`fuzz: seed ${seed}, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  console.log(table(counts));
  if (failures.length) {
    // one line per kind of failure (its message with the numbers taken out), 30 at most
    const seen = new Set();
    const distinct = failures.filter((f) => {
      const key = `${f.surface} ${f.outcome} ${f.detail.replace(/[-\d.e]+/g, '#')}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
    console.log(`\n${failures.length} case(s) ended badly; ${distinct.length} kind(s) (first 30):`);
    for (const f of distinct.slice(0, 30)) {
      console.log(
        `  ${f.surface} #${f.index} ${f.outcome}: ${f.detail}\n    replay: npm run fuzz -- --seed ${seed} --surface ${f.surface} --case ${f.index}`,
      );
    }
  }
  const bad = Object.values(counts).reduce(
    (a, c) => a + COLUMNS.filter((k) => k !== 'typed').reduce((b, k) => b + c[k], 0),
    0,
  );
  process.exitCode = bad === 0 ? 0 : 1;
}
