// Whether the timing thread had a core to itself. On Linux, /proc/thread-self/schedstat counts
// the nanoseconds this thread sat runnable but waiting for a CPU, charged exactly when it gets
// one back, so `1 - waited / wall` is the share of a measurement it actually ran (helper
// threads cannot mask it, as they would in process CPU time). Elsewhere, process CPU time
// ÷ wall time stands in.
import { readFileSync } from 'node:fs';

function waitedMs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[1]) / 1e6;
  } catch {
    return null;
  }
}

const hasSchedstat = waitedMs() !== null;

function processCpuMs() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Starts measuring; `read()` gives wall time (ms) and the share of it this thread ran. */
export function meter() {
  const mark = () => (hasSchedstat ? waitedMs() : processCpuMs());
  const t0 = performance.now();
  const m0 = mark();
  return {
    read() {
      const wall = performance.now() - t0;
      const d = mark() - m0;
      return { wall, busy: hasSchedstat ? 1 - d / wall : d / wall };
    },
  };
}

/** Runs `fn` once and returns its wall time (ms) and busy share. */
export function measured(fn) {
  const m = meter();
  fn();
  return m.read();
}
