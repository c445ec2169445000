// The examples, run as users run them (node + the built package): each must learn its task.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs an example and returns its printed output and the JSON summary on its last line. */
function run(script: string, ...args: string[]): { out: string; summary: Record<string, number> } {
  const out = execFileSync('node', [script, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 240_000,
  });
  const lines = out.trim().split('\n');
  return { out, summary: JSON.parse(lines[lines.length - 1]) as Record<string, number> };
}

beforeAll(async () => {
  await nb.init();
});

describe('ported programs', () => {
  it('3-5-2-3 regression with ReLU, MSE and Adam(0.01) fits its target', () => {
    const { summary } = run('examples/ports/regression.mjs');
    expect(summary.last).toBeLessThan(summary.first / 5);
    expect(summary.last).toBeLessThan(0.05);
  });

  it('one-hidden-layer classifier with cross-entropy and Adam(0.001) learns the digits', () => {
    const { summary } = run('examples/ports/classifier.mjs');
    expect(summary.last).toBeLessThan(summary.first / 5);
    expect(summary.testAccuracy).toBeGreaterThan(0.9);
  });

  it('2-4-1 sigmoid network with BCE and SGD(0.01) separates the two classes', () => {
    const { summary } = run('examples/ports/binary.mjs');
    expect(summary.last).toBeLessThan(summary.first / 3);
    expect(summary.accuracy).toBeGreaterThan(0.95);
  });
});

describe('examples/mnist-mlp', () => {
  it('reaches 97.5% test accuracy, prints the report and saves loadable weights', () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nabla-mnist-')), 'weights.safetensors');
    const { out: printed, summary } = run(
      'examples/mnist-mlp/train.mjs',
      '--progress',
      'lines',
      '--out',
      out,
    );
    expect(summary.testAccuracy).toBeGreaterThanOrEqual(0.975);
    expect(printed).toMatch(/precision +recall +f1-score +support/);
    expect(printed).toMatch(/weighted avg/);
    const tensors = nb.io.loadSafetensors(readFileSync(out));
    expect(Object.keys(tensors).sort()).toEqual(
      ['0.bias', '0.weight', '2.bias', '2.weight', '4.bias', '4.weight'].sort(),
    );
    expect(tensors['0.weight'].shape).toEqual([256, 784]);
  }, 300_000);
});
