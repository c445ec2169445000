// The examples, run as users run them (node + the built package): each must learn its task.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Runs an example and returns its printed output and the JSON summary on its last line.
 * Asynchronously: a minute-long synchronous child would leave vitest's worker unable to answer
 * its RPCs (they time out on a loaded machine).
 */
async function run(
  script: string,
  ...args: string[]
): Promise<{ out: string; summary: Record<string, number> }> {
  const { stdout: out } = await promisify(execFile)('node', [script, ...args], {
    cwd: root,
    encoding: 'utf8',
    timeout: 240_000,
    maxBuffer: 64 << 20,
  });
  const lines = out.trim().split('\n');
  return { out, summary: JSON.parse(lines[lines.length - 1]) as Record<string, number> };
}

beforeAll(async () => {
  await nb.init();
});

/** Source files under `dir` (recursively), skipping installed packages and fixture data. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(m?js|ts|py|sh)$/.test(e.name))
    .map((e) => join(e.parentPath ?? (e as unknown as { path: string }).path, e.name))
    .filter((f) => !f.includes('node_modules'));
}

describe('data the examples and tests read', () => {
  it('the digits set ships in the repository, and the classifier reads it from there', () => {
    const digits = JSON.parse(
      readFileSync(join(root, 'examples/data/sklearn-digits.json'), 'utf8'),
    ) as { train: { X: number[][]; y: number[] }; test: { X: number[][]; y: number[] } };
    expect([digits.train.X.length, digits.train.y.length]).toEqual([1347, 1347]);
    expect([digits.test.X.length, digits.test.y.length]).toEqual([450, 450]);
    expect(digits.train.X.every((r) => r.length === 64)).toBe(true);
    const src = readFileSync(join(root, 'examples/ports/classifier.mjs'), 'utf8');
    expect(src).toContain("new URL('../data/sklearn-digits.json', import.meta.url)");
  });

  it('no example, test, script or benchmark reads a path outside the repository', () => {
    const files = ['examples', 'test', 'scripts', 'bench'].flatMap(sources);
    expect(files.length).toBeGreaterThan(20);
    const escapes: string[] = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      // Paths resolved against the file itself: new URL('../x', import.meta.url).
      for (const m of text.matchAll(/new URL\(\s*(['"`])([^'"`$]+)\1\s*,\s*import\.meta\.url/g)) {
        const target = resolve(dirname(f), m[2]);
        if (relative(root, target).startsWith('..')) escapes.push(`${relative(root, f)}: ${m[2]}`);
      }
      // Absolute paths into the machine's other trees.
      for (const m of text.matchAll(/['"`](\/work\/[^'"`]*|[./]*shared\/data[^'"`]*)['"`]/g))
        escapes.push(`${relative(root, f)}: ${m[1]}`);
    }
    expect(escapes).toEqual([]);
  });
});

describe('ported programs', () => {
  it('3-5-2-3 regression with ReLU, MSE and Adam(0.01) fits its target', async () => {
    const { summary } = await run('examples/ports/regression.mjs');
    expect(summary.last).toBeLessThan(summary.first / 5);
    expect(summary.last).toBeLessThan(0.05);
  });

  it('one-hidden-layer classifier with cross-entropy and Adam(0.001) learns the digits', async () => {
    const { summary } = await run('examples/ports/classifier.mjs');
    expect(summary.last).toBeLessThan(summary.first / 5);
    expect(summary.testAccuracy).toBeGreaterThan(0.9);
  });

  it('LSTM sequence regressor (BPTT over 20 steps) beats the repeat-last-value baseline 5x', async () => {
    const { summary } = await run('examples/ports/lstm-sequence.mjs');
    expect(summary.last).toBeLessThan(summary.first / 20);
    expect(summary.testMse).toBeLessThan(summary.naive / 5);
  });

  it('2-4-1 sigmoid network with BCE and SGD(0.01) separates the two classes', async () => {
    const { summary } = await run('examples/ports/binary.mjs');
    expect(summary.last).toBeLessThan(summary.first / 3);
    expect(summary.accuracy).toBeGreaterThan(0.95);
  });
});

describe('examples/mnist-mlp', () => {
  it('reaches 97.5% test accuracy, prints the report and saves loadable weights', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nabla-mnist-')), 'weights.safetensors');
    const { out: printed, summary } = await run(
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
