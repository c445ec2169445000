// `npm run bench -- --quick` end to end: every library and workload runs, the JSON holds
// positive finite figures, and every printed ratio is the arithmetic the report claims.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const JS_LIBRARIES = ['nabla', 'tfjs-wasm', 'tfjs-cpu'];
const FORMS = ['AB', 'AtB', 'ABt'];
const FORM_LABEL: Record<string, string> = { AB: 'A·B', AtB: 'Aᵀ·B', ABt: 'A·Bᵀ' };

interface Row {
  id: string;
  section: 'gemm' | 'mlp';
  label: string;
  form?: string;
  m?: number;
  k?: number;
  n?: number;
  better: 'higher' | 'lower' | null;
  values: Record<string, number | null>;
  ratios: Record<string, number | null>;
}

interface Case {
  m: number;
  k: number;
  n: number;
  form: string;
}

interface MatmulEntry extends Case {
  gflops: number;
  ms: number;
}

interface Report {
  quick: boolean;
  libraries: string[];
  skipped: string[];
  errors: unknown[];
  machine: { cpu: string; cores: number; node: string };
  config: { matmul: { cases: Case[] } };
  rows: Row[];
  results: Record<
    string,
    Record<string, Record<string, unknown> & { memory: Record<string, number> }>
  >;
  markdown: string;
}

const finitePositive = (v: unknown): boolean =>
  typeof v === 'number' && Number.isFinite(v) && v > 0;

let out: string;
let stdout: string;
let report: Report;

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'nabla-bench-test-'));
  ({ stdout } = await run(process.execPath, ['bench/run.mjs', '--quick', '--out', out], {
    maxBuffer: 16 << 20,
  }));
  report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
}, 90_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench -- --quick', () => {
  it('writes a dated JSON file and latest.json with the same report', () => {
    const files = readdirSync(out).sort();
    expect(files).toHaveLength(2);
    expect(files[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z\.json$/);
    expect(files[1]).toBe('latest.json');
    expect(readFileSync(join(out, files[0]), 'utf8')).toBe(
      readFileSync(join(out, 'latest.json'), 'utf8'),
    );
    expect(report.quick).toBe(true);
    expect(report.errors).toEqual([]);
    expect(report.machine.cpu.length).toBeGreaterThan(0);
    expect(report.machine.cores).toBeGreaterThan(0);
    expect(report.machine.node).toBe(process.version);
  });

  it('ran every workload for nabla and each JS peer with positive finite figures', () => {
    const cases = report.config.matmul.cases;
    expect(new Set(cases.map((c) => c.form))).toEqual(new Set(FORMS));
    for (const lib of JS_LIBRARIES) {
      expect(report.libraries).toContain(lib);
      const r = report.results[lib];
      const mm = r.matmul.matmul as MatmulEntry[];
      expect(mm).toHaveLength(cases.length);
      mm.forEach((e, i) => {
        expect([e.m, e.k, e.n, e.form]).toEqual([
          cases[i].m,
          cases[i].k,
          cases[i].n,
          cases[i].form,
        ]);
        expect(finitePositive(e.gflops), `${lib} ${e.form} ${e.m}`).toBe(true);
        expect(e.gflops).toBeCloseTo((2 * e.m * e.k * e.n) / e.ms / 1e6, 6);
      });
      const train = r.train.train as Record<string, number> & { rounds: number[] };
      expect(finitePositive(train.samplesPerSec)).toBe(true);
      // The reported figure is the best of the rounds, each of which is kept.
      expect(train.rounds).toHaveLength(2);
      expect(train.samplesPerSec).toBe(Math.max(...train.rounds));
      expect(train.samplesPerSec).toBeCloseTo((train.batch * 1000) / train.msPerStep, 6);
      expect(Number.isFinite(train.finalLoss)).toBe(true);
      const epoch = r.epoch.epoch as Record<string, number | boolean | null>;
      expect(finitePositive(epoch.seconds)).toBe(true);
      if (epoch.extrapolated) expect(epoch.testAccuracy).toBeNull();
      else expect(epoch.testAccuracy).toBeGreaterThan(0.1);
      for (const w of ['train', 'epoch']) expect(finitePositive(r[w].memory.peakRss)).toBe(true);
    }
    // The quick epoch is long enough that tfjs-cpu takes the extrapolation path.
    expect(report.results['tfjs-cpu'].epoch.epoch).toMatchObject({ extrapolated: true });
    expect(report.results.nabla.epoch.epoch).toMatchObject({ extrapolated: false });
    expect(finitePositive(report.results.nabla.epoch.memory.wasmHeapBytes)).toBe(true);
  });

  it('computes every ratio as nabla advantage from the reported figures', () => {
    expect(report.rows.length).toBeGreaterThan(report.config.matmul.cases.length);
    let checked = 0;
    for (const row of report.rows) {
      const nabla = row.values.nabla;
      for (const peer of report.libraries.filter((l) => l !== 'nabla')) {
        const v = row.values[peer];
        const ratio = row.ratios[peer];
        if (row.better === null || !finitePositive(nabla) || !finitePositive(v)) {
          expect(ratio, `${row.id} ${peer}`).toBeNull();
          continue;
        }
        const want = row.better === 'higher' ? nabla! / v! : v! / nabla!;
        expect(ratio, `${row.id} ${peer}`).toBeCloseTo(want, 9);
        checked++;
      }
    }
    // Every GEMM row and the train-step, epoch and memory rows have a ratio for each JS peer.
    expect(checked).toBeGreaterThanOrEqual((report.config.matmul.cases.length + 3) * 2);
    const gemm = report.rows.filter((r) => r.section === 'gemm');
    for (const row of gemm) {
      const entry = (report.results.nabla.matmul.matmul as MatmulEntry[]).find(
        (e) => e.m === row.m && e.k === row.k && e.n === row.n && e.form === row.form,
      );
      expect(row.values.nabla).toBe(entry!.gflops);
      expect(row.values['tfjs-wasm']).toBeGreaterThan(0);
    }
  });

  it('prints the markdown tables with those ratios', () => {
    expect(stdout.trim()).toBe(report.markdown.trim());
    expect(stdout).toContain('### GEMM, GFLOP/s');
    expect(stdout).toMatch(/\| case \| m×k×n \| form \| nabla \| nabla kernel \| tfjs-wasm \|/);
    expect(stdout).toContain('### MLP 784-256-128-10');
    const lines = stdout.split('\n');
    const peers = report.libraries.filter((l) => l !== 'nabla');
    for (const row of report.rows.filter((r) => r.section === 'gemm')) {
      const line = lines.find((l) =>
        l.includes(`| ${row.m}×${row.k}×${row.n} | ${FORM_LABEL[row.form!]} |`),
      );
      expect(line, row.id).toBeDefined();
      const cells = line!
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim());
      peers.forEach((peer, i) => {
        expect(cells[5 + i]).toContain(`(${row.ratios[peer]!.toFixed(2)}x)`);
      });
    }
    const train = report.rows.find((r) => r.id === 'train:samplesPerSec')!;
    const line = lines.find((l) => l.startsWith(`| ${train.label} |`))!;
    expect(line).toContain(`(${train.ratios['tfjs-wasm']!.toFixed(2)}x)`);
    expect(line).toContain(`(${train.ratios['tfjs-cpu']!.toFixed(2)}x)`);
    expect(stdout).toMatch(/† tfjs-cpu: extrapolated from 2 of \d+ steps/);
  });
});
