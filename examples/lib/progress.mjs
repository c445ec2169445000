// Progress output shared by the example trainers: `line` prints a line; `tick` redraws a
// one-line bar when stdout is a terminal (or --progress bar), at most five times a second.
// Modes: auto | bar | lines | silent.

/** A reporter for `mode`; `json` (a machine-readable run) silences it. */
export function progressReporter(mode, { json = false } = {}) {
  const m = json ? 'silent' : mode;
  const tty = m === 'bar' || (m === 'auto' && process.stdout.isTTY);
  let lastDraw = 0;
  return {
    line(s) {
      if (m === 'silent') return;
      if (tty) process.stdout.write('\r\x1b[2K');
      console.log(s);
    },
    tick(i, n, text) {
      if (!tty) return;
      const now = performance.now();
      if (now - lastDraw < 200 && i < n) return;
      lastDraw = now;
      const w = 30;
      const f = Math.round((w * i) / n);
      const bar = '='.repeat(f) + (f < w ? '>' : '') + ' '.repeat(Math.max(0, w - f - 1));
      process.stdout.write(`\r\x1b[2K[${bar}] ${i}/${n} ${text}`);
      if (i === n) process.stdout.write('\r\x1b[2K');
    },
  };
}
