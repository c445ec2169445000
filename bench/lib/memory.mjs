// Peak resident memory of this process. Workloads are synchronous loops, so a timer could
// never fire mid-run: callers sample at checkpoints, and the kernel's high-water mark
// (VmHWM) catches any peak between samples.
import { readFileSync } from 'node:fs';

/** VmHWM from /proc/self/status in bytes, or null off Linux. */
export function vmHwm() {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function rssSampler() {
  let peak = 0;
  const sample = () => {
    const r = process.memoryUsage.rss();
    if (r > peak) peak = r;
    return r;
  };
  const baseline = sample();
  return {
    sample,
    /** Memory summary; `peakRss` is the larger of the sampled peak and VmHWM. */
    report() {
      sample();
      const hwm = vmHwm();
      return {
        baselineRss: baseline,
        sampledPeakRss: peak,
        vmHwm: hwm,
        peakRss: Math.max(peak, hwm ?? 0),
      };
    },
  };
}
