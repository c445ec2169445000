// Progress output for `fit`: a redrawn bar on a terminal, one plain line per epoch otherwise,
// nothing when silent. Shows loss, metrics, samples/s and the time left.
import type { Logs } from './callbacks.js';

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'silent';

interface Sink {
  isTTY: boolean;
  write(s: string): void;
}

function stdoutSink(): Sink | null {
  const p = (
    globalThis as { process?: { stdout?: { isTTY?: boolean; write(s: string): boolean } } }
  ).process;
  if (!p?.stdout) return null;
  const out = p.stdout;
  return { isTTY: !!out.isTTY, write: (s) => void out.write(s) };
}

function formatLogs(logs: Logs): string {
  return Object.entries(logs)
    .filter(([k]) => k !== 'epoch')
    .map(
      ([k, v]) =>
        `${k} ${Math.abs(v) >= 1e4 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(3) : v.toFixed(4)}`,
    )
    .join(' · ');
}

function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '?';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - 60 * m)
    .toString()
    .padStart(2, '0')}s`;
}

export class Progress {
  private readonly sink: Sink | null;
  private readonly bar: boolean;
  private start = 0;
  private samples = 0;
  private lastDraw = 0;

  constructor(
    mode: ProgressMode,
    private readonly epochs: number,
    sink: Sink | null = stdoutSink(),
  ) {
    this.sink = mode === 'silent' ? null : sink;
    this.bar = mode === 'bar' || (mode === 'auto' && !!sink?.isTTY);
  }

  epochBegin(): void {
    this.start = performance.now();
    this.samples = 0;
    this.lastDraw = 0;
  }

  batch(epoch: number, done: number, total: number, batchSize: number, logs: Logs): void {
    this.samples += batchSize;
    if (!this.sink || !this.bar) return;
    const now = performance.now();
    // Redraw at most 10 times a second, but always draw the last batch of a known total.
    if (now - this.lastDraw < 100 && !(done === total)) return;
    this.lastDraw = now;
    const elapsed = (now - this.start) / 1000;
    const rate = `${Math.round(this.samples / Math.max(elapsed, 1e-9))} samples/s`;
    // A loader without a length gets a count instead of a bar and an ETA.
    if (!Number.isFinite(total)) {
      const line = `epoch ${epoch + 1}/${this.epochs} batch ${done} · ${formatLogs(logs)} · ${rate}`;
      this.sink.write(`\r\x1b[2K${line}`);
      return;
    }
    const width = 24;
    const filled = total ? Math.round((width * done) / total) : width;
    const eta = done ? (elapsed * (total - done)) / done : Infinity;
    const bar = `${'='.repeat(filled)}${filled < width ? '>' : ''}${' '.repeat(Math.max(0, width - filled - 1))}`;
    const line = `epoch ${epoch + 1}/${this.epochs} [${bar}] ${done}/${total} · ${formatLogs(logs)} · ${rate} · ETA ${formatSeconds(eta)}`;
    this.sink.write(`\r\x1b[2K${line}`);
  }

  epochEnd(epoch: number, logs: Logs): void {
    if (!this.sink) return;
    const elapsed = (performance.now() - this.start) / 1000;
    const rate = Math.round(this.samples / Math.max(elapsed, 1e-9));
    const line = `epoch ${epoch + 1}/${this.epochs} · ${formatLogs(logs)} · ${rate} samples/s · ${formatSeconds(elapsed)}`;
    this.sink.write(this.bar ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }
}
