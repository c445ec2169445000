// Warm-up then repeated, time-budgeted samples; torch_bench.py mirrors these rules so every
// library is timed the same way.
//
// The machine is shared: a sample during which the timing thread waited for a CPU (CPU time
// under 90% of wall time) measures the neighbours, not the library, so it is discarded and
// another one is taken, within twice the time budget. If too few clean samples come in, all
// samples count and the result says `contended`.
import { measured } from './cpu.mjs';
import { clamp, median, spread } from './stats.mjs';

const now = () => performance.now();
export const CLEAN = 0.9;
const sample = measured;

/**
 * Takes `want` samples of `fn` (each returning its per-op time), keeping clean ones until
 * `want` are clean or `capMs` has passed with at least `min` clean. Returns the median.
 */
function collect(fn, want, min, capMs, hardCapMs = Infinity) {
  const clean = [];
  const all = [];
  const t0 = now();
  while (clean.length < want && (now() - t0 < capMs || clean.length < min)) {
    const s = fn();
    all.push(s.ms);
    if (s.busy >= CLEAN) clean.push(s.ms);
    if (now() - t0 >= Math.min(2 * capMs, hardCapMs) && all.length >= min) break;
  }
  const contended = clean.length < min;
  const used = contended ? all : clean;
  return {
    ms: median(used),
    samples: used.length,
    discarded: all.length - clean.length,
    contended,
    spread: spread(used),
  };
}

/**
 * Times `fn` (one synchronous call = one operation). Warms up for at least two calls and
 * `warmupMs` (one call suffices once a call takes over 300 ms), then takes up to `samples`
 * samples of `reps` back-to-back calls, `reps` chosen so a sample lasts about `sampleMs`, and
 * fewer samples (but at least `minSamples`) when they would exceed `budgetMs`.
 */
export function timeCalls(fn, { warmupMs, sampleMs, samples, minSamples, budgetMs }) {
  let calls = 0;
  const t0 = now();
  for (;;) {
    fn();
    calls++;
    const el = now() - t0;
    if ((calls >= 2 && el >= warmupMs) || el >= 300) break;
  }
  const perCall = (now() - t0) / calls;
  const reps = Math.max(1, Math.round(sampleMs / perCall));
  const count = clamp(Math.floor(budgetMs / (reps * perCall)), minSamples, samples);
  const run = () => {
    const s = sample(() => {
      for (let r = 0; r < reps; r++) fn();
    });
    return { ms: s.wall / reps, busy: s.busy };
  };
  return { ...collect(run, count, minSamples, budgetMs), reps };
}

/**
 * Times training steps: `warmupSteps` steps, then `windows` windows of N steps each (N sized
 * from the warm-up so a window lasts about `windowMs`, at least `minWindowSteps`, default 2:
 * a check on the timed steps' loss wants enough of them however slow the warm-up was). Returns the median step
 * time; `step(i)` runs step number i and `onWindow` lets the caller sample memory. A library
 * at seconds a step sets `maxMs`: retakes of contended windows stop there (the minimum number
 * of windows still runs), so its child stays inside the harness's timeout.
 */
export function timeSteps(
  step,
  { warmupSteps, windowMs, windows, maxMs = Infinity, minWindowSteps = 2 },
  onWindow = () => {},
) {
  let i = 0;
  const half = Math.max(1, warmupSteps >> 1);
  for (; i < warmupSteps - half; i++) step(i);
  // Only the second half of the warm-up estimates the step time: the first pays for JIT.
  const t0 = now();
  for (; i < warmupSteps; i++) step(i);
  const perStep = (now() - t0) / half;
  const n = clamp(Math.round(windowMs / perStep), minWindowSteps, 200);
  const run = () => {
    const s = sample(() => {
      for (let k = 0; k < n; k++) step(i++);
    });
    onWindow();
    return { ms: s.wall / n, busy: s.busy };
  };
  const r = collect(run, windows, Math.max(2, windows >> 1), windows * n * perStep, maxMs);
  return { ...r, windows: r.samples, stepsPerWindow: n };
}

/**
 * timeSteps over a training step whose timed closure is itself checked: the first call records
 * `snapshot()` before and after its update (plus `afterFirst()` if given), and every call's loss
 * is kept, so the parent can recompute the optimizer's first update and see the loss fall.
 * Returns the timing fields every training workload reports, and the step check.
 */
export function timeCheckedSteps({ batches, step, snapshot, afterFirst, timing, onWindow }) {
  const losses = [];
  let first = null;
  const t = timeSteps(
    (i) => {
      const bt = batches[i % batches.length];
      if (i === 0) {
        const p0 = snapshot();
        losses.push(step(bt));
        first = { p0, p1: snapshot(), ...(afterFirst ? afterFirst(bt) : {}) };
      } else {
        losses.push(step(bt));
      }
    },
    timing,
    onWindow,
  );
  return {
    timing: {
      msPerStep: t.ms,
      windows: t.windows,
      discarded: t.discarded,
      contended: t.contended,
      stepsPerWindow: t.stepsPerWindow,
      spread: t.spread,
    },
    ms: t.ms,
    losses,
    stepsRun: losses.length,
    finalLoss: losses[losses.length - 1],
    stepCheck: { ...first, losses, cycle: batches.length },
  };
}
