// A short run of examples/char-lm (100k characters of the Brown corpus, a small 2-layer LSTM,
// two epochs of truncated BPTT): validation loss must fall well below the unigram level, and
// the sample must continue the prompt with vocabulary characters only.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('examples/char-lm', () => {
  it('learns characters of the Brown corpus and samples text', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        'examples/char-lm/train.mjs',
        ...['--chars', '100000', '--hidden', '48', '--layers', '2', '--embed', '16'],
        ...['--seq', '32', '--batch', '16', '--epochs', '2', '--sample', '80', '--json'],
      ],
      { maxBuffer: 1 << 24 },
    );
    const r = JSON.parse(stdout.trim().split('\n').pop()!) as {
      bestValLoss: number;
      steps: number;
      history: { valLoss: number }[];
      sample: string;
    };
    // ln 96 = 4.56 nats is a uniform guess; English letters alone carry about 2.9 nats.
    expect(r.bestValLoss).toBeLessThan(2.75);
    expect(r.history[1].valLoss).toBeLessThan(r.history[0].valLoss);
    expect(r.steps).toBe(370);
    expect(r.sample.startsWith('The ')).toBe(true);
    expect(r.sample).toHaveLength(4 + 80);
    expect(r.sample).toMatch(/^[\n\x20-\x7e]+$/);
  }, 120_000);
});
