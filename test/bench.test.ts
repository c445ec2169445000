// `npm run bench -- --quick` end to end: every library and workload runs, the JSON holds
// positive finite figures, and every printed ratio is the arithmetic the report claims.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type * as nb from '../ts/index.js';

const run = promisify(execFile);
const JS_LIBRARIES = ['nabla', 'tfjs-wasm', 'tfjs-cpu', 'nabla-relaxed', 'nabla-2t'];
const FORMS = ['AB', 'AtB', 'ABt'];
const FORM_LABEL: Record<string, string> = { AB: 'A·B', AtB: 'Aᵀ·B', ABt: 'A·Bᵀ' };

interface Row {
  id: string;
  section: 'gemm' | 'mlp' | 'rnn';
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
  config: {
    matmul: { cases: Case[] };
    rnn: { cases: { id: string; cell: string; hidden: number }[]; batch: number; seq: number };
  };
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
  const argv = ['bench/run.mjs', '--quick', '--threads', '2', '--out', out];
  ({ stdout } = await run(process.execPath, argv, {
    maxBuffer: 16 << 20,
  }));
  report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
}, 600_000);

afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench -- --quick', () => {
  it('runs the nabla child on the relaxed core and on 2 threads as their own columns', () => {
    const core = (lib: string) =>
      (report.results[lib].train as unknown as { info: { core: nb.BackendInfo } }).info.core;
    expect(core('nabla')).toMatchObject({ simd: 'simd128', threads: 1 });
    expect(core('nabla-relaxed')).toMatchObject({ simd: 'relaxed', threads: 1 });
    expect(core('nabla-2t')).toMatchObject({ simd: 'simd128', threads: 2 });
    expect(stdout).toContain('nabla-2t: the nabla child with `init({ threads: n })`');
  });

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

  it('trains the character RNN at every size, tfjs-wasm through its one-hot variant', () => {
    const { cases, batch, seq } = report.config.rnn;
    expect(cases.map((c) => c.cell)).toEqual(['lstm', 'lstm', 'gru']);
    for (const lib of [...JS_LIBRARIES, 'torch']) {
      if (!report.libraries.includes(lib)) continue;
      for (const c of cases) {
        const r = report.results[lib][`rnn-${c.id}`];
        const t = r.rnn as Record<string, number | string | null> & {
          stepCheck: Record<string, number>;
        };
        expect(t.tokensPerStep).toBe(batch * seq);
        expect(t.tokensPerSec as number).toBeCloseTo(
          (batch * seq * 1000) / (t.msPerStep as number),
          6,
        );
        // the parent's checks ran and kept their summary
        expect(t.stepCheck.movedByLr).toBeGreaterThan(0.8 * t.stepCheck.parameters);
        expect(t.stepCheck.lastCycleLoss).toBeLessThan(t.stepCheck.firstCycleLoss);
        expect(finitePositive(r.memory.peakRss), `${lib} ${c.id}`).toBe(true);
        if (lib === 'tfjs-wasm') {
          expect(t.cannotTrain).toMatch(/UnsortedSegmentSum/);
          expect(t.variant).toMatch(/one-hot/);
        } else {
          expect(t.cannotTrain).toBeNull();
        }
        const row = report.rows.find((w) => w.id === `rnn-${c.id}:tokensPerSec`)!;
        expect(row.values[lib]).toBe(t.tokensPerSec);
      }
    }
    const row = report.rows.find((w) => w.id === `rnn-${cases[0].id}:tokensPerSec`)!;
    const line = stdout.split('\n').find((l) => l.startsWith(`| ${row.label} |`))!;
    expect(line).toMatch(/cannot train: Kernel 'UnsortedSegmentSum' not registered/);
    expect(line).toContain(`§ (${row.ratios['tfjs-wasm']!.toFixed(2)}x)`);
    expect(stdout).toContain('### Character-level RNN: Embedding(96, 64)');
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
    // Every GEMM row, the train-step, epoch and memory rows and the RNN rows (tokens/s and peak
    // RSS at each size) have a ratio for each JS peer.
    const rnnRows = report.config.rnn.cases.length * 2;
    expect(checked).toBeGreaterThanOrEqual((report.config.matmul.cases.length + 3 + rnnRows) * 2);
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

// The CNN workloads (bench/lib/cnn.mjs) in the same quick run: nabla, tfjs-cpu and PyTorch
// train both models and the parent checks their timed steps; tfjs-wasm cannot take a conv
// filter's gradient and says so from the error its probe got.
interface CnnRow {
  id: string;
  section: string;
  label: string;
  values: Record<string, number | null>;
  ratios: Record<string, number | null>;
  cannot: Record<string, string>;
}

describe('npm run bench -- --quick: CNN workloads', () => {
  const WORKLOADS = ['cnn-lenet', 'cnn-resblock'];
  const cnnRows = (): CnnRow[] =>
    (report.rows as unknown as CnnRow[]).filter((r) => r.section === 'cnn');

  it('trains LeNet and the BasicBlock, every timed step checked', () => {
    for (const lib of ['nabla', 'tfjs-cpu', 'torch']) {
      if (!report.libraries.includes(lib)) continue;
      for (const w of WORKLOADS) {
        const r = report.results[lib][w];
        const t = r.cnn as Record<string, number | null> & {
          stepCheck: Record<string, number>;
        };
        expect(t.cannotTrain, `${lib} ${w}`).toBeNull();
        expect(t.samplesPerSec as number).toBeCloseTo(
          ((t.batch as number) * 1000) / (t.msPerStep as number),
          6,
        );
        // the parent's checks ran and kept their summary
        expect(t.stepCheck.movedByLr).toBeGreaterThan(0.95 * t.stepCheck.moved);
        expect(t.stepCheck.movedByLr).toBeGreaterThan(0.3 * t.stepCheck.parameters);
        expect(t.stepCheck.lastCycleLoss).toBeLessThan(t.stepCheck.firstCycleLoss);
        expect(finitePositive(r.memory.peakRss), `${lib} ${w}`).toBe(true);
        const row = cnnRows().find((x) => x.id === `${w}:samplesPerSec`)!;
        expect(row.values[lib]).toBe(t.samplesPerSec);
      }
    }
    // LeNet-5's 61,706 parameters; the quick BasicBlock's two 8-channel convs and BatchNorms
    expect(report.results.nabla['cnn-lenet'].cnn).toMatchObject({
      stepCheck: { parameters: 61_706 },
    });
    expect(report.results.nabla['cnn-resblock'].cnn).toMatchObject({
      stepCheck: { parameters: 2 * 8 * 8 * 9 + 4 * 8 },
    });
  });

  it('tfjs-wasm cannot train either CNN: Conv2DBackpropFilter is missing', () => {
    for (const w of WORKLOADS) {
      const t = report.results['tfjs-wasm'][w].cnn as Record<string, unknown>;
      expect(t.cannotTrain).toMatch(/Kernel 'Conv2DBackpropFilter' not registered/);
      expect(t.samplesPerSec).toBeNull();
      const row = cnnRows().find((x) => x.id === `${w}:samplesPerSec`)!;
      expect(row.values['tfjs-wasm']).toBeNull();
      expect(row.ratios['tfjs-wasm']).toBeNull();
      const line = stdout.split('\n').find((l) => l.startsWith(`| ${row.label} |`))!;
      expect(line).toContain("cannot train: Kernel 'Conv2DBackpropFilter' not registered");
      expect(line).toContain(`(${row.ratios['tfjs-cpu']!.toFixed(2)}x)`);
    }
    expect(stdout).toContain('### CNNs');
  });
});

// The harness must reject timed work that is not the real work: each planted workload swaps a
// broken piece into nabla's child, and the run must fail naming the problem.
describe('npm run bench rejects planted broken workloads', () => {
  const planted = async (plant: string, workloads: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'nabla-bench-plant-'));
    try {
      await run(
        process.execPath,
        [
          'bench/run.mjs',
          '--quick',
          '--only',
          'nabla',
          '--workloads',
          workloads,
          '--plant',
          plant,
          '--out',
          dir,
        ],
        { maxBuffer: 16 << 20 },
      );
      return { code: 0, stderr: '' };
    } catch (e) {
      const err = e as { code: number; stderr: string };
      return { code: err.code, stderr: err.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('a GEMM whose timed calls compute nothing', async () => {
    const r = await planted('noop-matmul', 'matmul');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/wrong AB product/);
  }, 60_000);

  it('a training step that does nothing', async () => {
    const r = await planted('noop-step', 'train');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /check failed: nabla: the timed training step did not apply the expected Adam update/,
    );
  }, 60_000);

  it('a training step without backward', async () => {
    const r = await planted('no-backward', 'train');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/did not apply the expected Adam update/);
  }, 60_000);

  it('a training step with the wrong optimizer update', async () => {
    const r = await planted('sgd-step', 'train');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/check failed: nabla: the timed training step/);
  }, 60_000);

  it('a character-RNN step without backward, and one with the wrong optimizer', async () => {
    const r = await planted('no-backward', 'rnn-lstm32');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /check failed: nabla: the timed training step did not apply Adam's first update: only 0 of/,
    );
    const s = await planted('sgd-step', 'rnn-lstm32');
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/check failed: nabla: the timed training step moved parameter/);
  }, 60_000);

  it('a CNN step without backward, and one with the wrong optimizer', async () => {
    const r = await planted('no-backward', 'cnn-lenet');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /check failed: nabla: the timed training step did not apply Adam's first update: only 0 of/,
    );
    const s = await planted('sgd-step', 'cnn-resblock');
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(
      /check failed: nabla: the timed training step (moved parameter|did not apply)/,
    );
  }, 60_000);
});

interface StepChecks {
  checkAdamStepSize(a: Record<string, unknown>): { movedByLr: number };
  checkLossFalls(a: { library: string; losses: number[]; cycle: number; factor?: number }): {
    lastCycleLoss: number;
  };
  checkFirstAdamStep(a: Record<string, unknown>): { checkedElements: number };
  encodeF32(a: Float32Array): string;
  mlpGradients(
    layers: number[],
    params: Float32Array[],
    x: Float32Array,
    y: Int32Array,
    rows: number,
  ): Float64Array[];
}
// A computed specifier keeps tsc from looking for the plain-JS module's types.
const stepChecks = (): Promise<StepChecks> => import(`../bench/lib/${'stepcheck'}.mjs`);

describe('the step checks themselves', () => {
  it('reject a loss that does not fall and accept one that does', async () => {
    const { checkLossFalls } = await stepChecks();
    const flat = Array.from({ length: 8 }, () => 2.3);
    expect(() => checkLossFalls({ library: 'x', losses: flat, cycle: 2 })).toThrow(/did not fall/);
    // fewer than two cycles: the halves are compared
    expect(() => checkLossFalls({ library: 'x', losses: flat, cycle: 32 })).toThrow(/did not fall/);
    const short = Array.from({ length: 26 }, (_, i) => 2.3 - 0.05 * i);
    expect(checkLossFalls({ library: 'x', losses: short, cycle: 32 }).lastCycleLoss).toBeCloseTo(
      2.3 - 0.05 * 19,
    );
    expect(() => checkLossFalls({ library: 'x', losses: [2, 1, 0], cycle: 2 })).toThrow(
      /3 losses recorded/,
    );
    const falling = Array.from({ length: 8 }, (_, i) => 2.3 - 0.2 * i);
    expect(checkLossFalls({ library: 'x', losses: falling, cycle: 2 }).lastCycleLoss).toBeCloseTo(
      1.0,
    );
  });

  it("check the RNN's first update by its size: lr, for most weights, and never more", async () => {
    const { checkAdamStepSize, encodeF32 } = await stepChecks();
    const lr = 1e-3;
    const p0 = [Float32Array.from({ length: 100 }, (_, i) => Math.sin(i))];
    const moved = (f: (i: number) => number) => [p0[0].map((v, i) => v + f(i))].map(encodeF32);
    const args = { library: 'x', lr, p0: p0.map(encodeF32), least: 100 };
    // Adam's first step: ±lr, except where the gradient was zero
    const adam = moved((i) => (i % 10 === 0 ? 0 : i % 3 ? lr : -lr));
    expect(checkAdamStepSize({ ...args, p1: adam }).movedByLr).toBe(90);
    expect(() => checkAdamStepSize({ ...args, p1: p0.map(encodeF32) })).toThrow(/only 0 of 100/);
    expect(() => checkAdamStepSize({ ...args, p1: moved(() => lr / 2) })).toThrow(/only 0 of/);
    expect(() => checkAdamStepSize({ ...args, p1: moved((i) => (i ? lr : 3 * lr)) })).toThrow(
      /moved parameter 0\[0\] by 3.000e-3/,
    );
    // too few parameters reported: the check would not cover the model
    expect(() => checkAdamStepSize({ ...args, least: 101, p1: adam })).toThrow(/at least 101/);
    const { checkLossFalls } = await stepChecks();
    const slow = Array.from({ length: 6 }, (_, i) => 4.5 - 0.01 * i);
    expect(() => checkLossFalls({ library: 'x', losses: slow, cycle: 4 })).toThrow(/did not fall/);
    expect(
      checkLossFalls({ library: 'x', losses: slow, cycle: 4, factor: 0.995 }).lastCycleLoss,
    ).toBeCloseTo(4.46);
  });

  it('accept exactly Adam first update and reject a half-size one', async () => {
    const { checkFirstAdamStep, encodeF32, mlpGradients } = await stepChecks();
    // A 4-3-2 MLP on 5 random rows.
    const layers = [4, 3, 2];
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const sizes = [12, 3, 6, 2];
    const p0 = sizes.map((n) => Float32Array.from({ length: n }, rnd));
    const x = Float32Array.from({ length: 20 }, rnd);
    const y = Int32Array.from([0, 1, 1, 0, 1]);
    const lr = 1e-3;
    const g = mlpGradients(layers, p0, x, y, 5);
    const step = (scale: number) =>
      p0.map((p, t) => p.map((v, i) => v - (scale * lr * g[t][i]) / (Math.abs(g[t][i]) + 1e-8)));
    const args = { library: 'x', layers, lr, x, y, rows: 5, p0: p0.map(encodeF32) };
    expect(
      checkFirstAdamStep({ ...args, p1: step(1).map(encodeF32) }).checkedElements,
    ).toBeGreaterThan(10);
    expect(() => checkFirstAdamStep({ ...args, p1: step(0.5).map(encodeF32) })).toThrow(
      /expected Adam update/,
    );
  });
});

// The attention workloads (bench/lib/attention.mjs) in the same quick run: nabla and PyTorch
// run them and check their timed work; tfjs reports what it lacks, from errors it got.
interface AttentionRow {
  id: string;
  section: string;
  label: string;
  better: 'higher' | 'lower' | null;
  values: Record<string, number | null>;
  ratios: Record<string, number | null>;
  unsupported: Record<string, string>;
}

describe('npm run bench -- --quick: attention workloads', () => {
  const attention = (): AttentionRow[] =>
    (report.rows as unknown as AttentionRow[]).filter((r) => r.section === 'attention');
  const part = (lib: string, w: string): Record<string, unknown> =>
    report.results[lib][w][w] as Record<string, unknown>;

  it('nabla checked every timed SDPA call, GPT step and generation', () => {
    const sdpa = part('nabla', 'sdpa').cases as {
      ms: number;
      verified: string;
      check: { checkedValues: number; maxAbsError: number };
    }[];
    expect(sdpa).toHaveLength(2);
    for (const c of sdpa) {
      expect(finitePositive(c.ms)).toBe(true);
      expect(c.verified).toBe('last timed call');
      expect(c.check.checkedValues).toBeGreaterThan(0);
      expect(c.check.maxAbsError).toBeLessThan(1e-4);
    }
    const gpt = part('nabla', 'gpt') as {
      via: string;
      tokensPerSec: number;
      msPerStep: number;
      tokensPerStep: number;
      stepCheck: {
        movedByLr: number;
        parameters: number;
        lastCycleLoss: number;
        firstCycleLoss: number;
      };
    };
    expect(gpt.via).toBe('nn.GPT2LMHeadModel');
    expect(gpt.tokensPerSec).toBeCloseTo((gpt.tokensPerStep * 1000) / gpt.msPerStep, 6);
    expect(gpt.stepCheck.movedByLr).toBeGreaterThan(0.9 * gpt.stepCheck.parameters);
    expect(gpt.stepCheck.lastCycleLoss).toBeLessThan(gpt.stepCheck.firstCycleLoss);
    const kv = part('nabla', 'kvcache') as Record<string, number> & {
      check: { positions: number };
    };
    expect(kv.speedup).toBeCloseTo(kv.rerunMsPerToken / kv.cachedMsPerToken, 9);
    expect(kv.check.positions).toBe(kv.newTokens);
  });

  it('tfjs reports what it lacks instead of a figure', () => {
    for (const lib of ['tfjs-wasm', 'tfjs-cpu']) {
      for (const w of ['sdpa', 'gpt', 'kvcache']) {
        const r = part(lib, w);
        expect(typeof r.unsupported, `${lib} ${w}`).toBe('string');
        expect(r.why).toMatch(/no attention layer or op/);
      }
    }
    expect(part('tfjs-wasm', 'gpt').why).toMatch(/UnsortedSegmentSum/);
    expect(part('tfjs-wasm', 'gpt').unsupported).toBe('cannot train');
    const row = attention().find((r) => r.id === 'gpt:tokensPerSec')!;
    expect(row.values['tfjs-wasm']).toBeNull();
    expect(row.ratios['tfjs-wasm']).toBeNull();
    expect(row.unsupported['tfjs-wasm']).toBe('cannot train');
  });

  it("prints the attention table with its ratios and the peers' reasons", () => {
    expect(stdout).toContain('### Attention and a tiny GPT');
    const lines = stdout.split('\n');
    const rows = attention();
    expect(rows.map((r) => r.id)).toEqual([
      'sdpa:T32:ms',
      'sdpa:T64:ms',
      'gpt:tokensPerSec',
      'gpt:peakRss',
      'gpt:wasmHeap',
      'kvcache:cachedMs',
      'kvcache:rerunMs',
      'kvcache:speedup',
    ]);
    for (const row of rows) {
      const line = lines.find((l) => l.startsWith(`| ${row.label} |`));
      expect(line, row.id).toBeDefined();
      const torch = row.ratios.torch;
      if (typeof torch === 'number') expect(line).toContain(`(${torch.toFixed(2)}x)`);
      expect(line).toContain(`${row.unsupported['tfjs-wasm']} ¹`);
    }
    expect(stdout).toMatch(/¹ tfjs-wasm, as tried in its child: .*UnsortedSegmentSum/);
  });
});

describe('npm run bench rejects planted broken attention workloads', () => {
  const planted = async (plant: string, workloads: string) => {
    const dir = mkdtempSync(join(tmpdir(), 'nabla-bench-plant-'));
    try {
      await run(
        process.execPath,
        [
          'bench/run.mjs',
          '--quick',
          '--only',
          'nabla',
          '--workloads',
          workloads,
          '--plant',
          plant,
          '--out',
          dir,
        ],
        { maxBuffer: 16 << 20 },
      );
      return { code: 0, stderr: '' };
    } catch (e) {
      const err = e as { code: number; stderr: string };
      return { code: err.code, stderr: err.stderr };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('an SDPA whose timed calls compute nothing', async () => {
    const r = await planted('noop-sdpa', 'sdpa');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/sdpa T 32: output\[head 0, row 0, 0\] = 0, float64 gives/);
  }, 60_000);

  it('a GPT step without backward', async () => {
    const r = await planted('gpt-no-backward', 'gpt');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /check failed: nabla: the timed GPT step did not apply AdamW's first update/,
    );
  }, 60_000);

  it('a GPT step with SGD instead of AdamW', async () => {
    const r = await planted('gpt-sgd', 'gpt');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/check failed: nabla: the timed GPT step/);
  }, 60_000);

  it('a "cached" generation that ignores its cache', async () => {
    const r = await planted('kvcache-no-past', 'kvcache');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the cached generation's logits differ from re-running the prefix/);
  }, 60_000);
});

interface AttentionChecks {
  checkFirstAdamWStep(a: Record<string, unknown>): { movedByLr: number };
  checkSdpa(a: Record<string, unknown>): { checkedValues: number };
}
const attentionChecks = (): Promise<AttentionChecks> =>
  import(`../bench/lib/${'attention-check'}.mjs`);

describe('the attention checks themselves', () => {
  it('accept AdamW first update and reject a no-op, a half step and a step that raises the loss', async () => {
    const { checkFirstAdamWStep } = await attentionChecks();
    const { encodeF32, decodeF32 } = (await stepChecks()) as StepChecks & {
      decodeF32(s: string): Float32Array;
    };
    const lr = 1e-3;
    const wd = 0.01;
    let seed = 3;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const p0 = [Float32Array.from({ length: 50 }, rnd), Float32Array.from({ length: 7 }, rnd)];
    const g = p0.map((p) => p.map(() => rnd()));
    const step = (scale: number) =>
      p0.map((p, t) =>
        p.map((v, i) => v * (1 - lr * wd) - (scale * lr * g[t][i]) / (Math.abs(g[t][i]) + 1e-8)),
      );
    const args = {
      library: 'x',
      lr,
      weightDecay: wd,
      p0: p0.map(encodeF32),
      lossBefore: 2,
      lossAfter: 1.9,
      decode: decodeF32,
    };
    expect(checkFirstAdamWStep({ ...args, p1: step(1).map(encodeF32) }).movedByLr).toBe(57);
    expect(() => checkFirstAdamWStep({ ...args, p1: p0.map(encodeF32) })).toThrow(
      /did not apply AdamW's first update: only 0 of 57/,
    );
    expect(() => checkFirstAdamWStep({ ...args, p1: step(0.5).map(encodeF32) })).toThrow(
      /did not apply AdamW's first update/,
    );
    expect(() => checkFirstAdamWStep({ ...args, p1: step(2).map(encodeF32) })).toThrow(
      /more than AdamW's first step/,
    );
    expect(() =>
      checkFirstAdamWStep({ ...args, p1: step(1).map(encodeF32), lossAfter: 2.1 }),
    ).toThrow(/did not lower its batch's loss/);
  });

  it('accept exact attention and reject one wrong gradient entry', async () => {
    const { checkSdpa } = await attentionChecks();
    const [B, H, T, E] = [1, 2, 5, 3];
    const n = B * H * T * E;
    let seed = 9;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    const [q, k, v, g] = [0, 1, 2, 3].map(() => Float64Array.from({ length: n }, rnd));
    // float64 causal attention and its gradients, written independently of the checker
    const o = new Float64Array(n);
    const [dq, dk, dv] = [0, 1, 2].map(() => new Float64Array(n));
    const s = 1 / Math.sqrt(E);
    for (let h = 0; h < B * H; h++) {
      const at = (a: Float64Array, i: number, e: number) => a[(h * T + i) * E + e];
      for (let i = 0; i < T; i++) {
        const w = Array.from({ length: i + 1 }, (_, j) => {
          let d = 0;
          for (let e = 0; e < E; e++) d += at(q, i, e) * at(k, j, e);
          return Math.exp(d * s);
        });
        const z = w.reduce((a, b) => a + b, 0);
        const p = w.map((x) => x / z);
        for (let j = 0; j <= i; j++)
          for (let e = 0; e < E; e++) o[(h * T + i) * E + e] += p[j] * at(v, j, e);
        const dp = p.map((_, j) => {
          let d = 0;
          for (let e = 0; e < E; e++) d += at(g, i, e) * at(v, j, e);
          return d;
        });
        const mean = p.reduce((a, pj, j) => a + pj * dp[j], 0);
        for (let j = 0; j <= i; j++) {
          const ds = p[j] * (dp[j] - mean) * s;
          for (let e = 0; e < E; e++) {
            dq[(h * T + i) * E + e] += ds * at(k, j, e);
            dk[(h * T + j) * E + e] += ds * at(q, i, e);
            dv[(h * T + j) * E + e] += p[j] * at(g, i, e);
          }
        }
      }
    }
    const args = { shape: [B, H, T, E], q, k, v, g, rows: 3 };
    expect(checkSdpa({ ...args, got: [o, dq, dk, dv] }).checkedValues).toBe(2 * 4 * 3 * E);
    const bad = Float64Array.from(dk);
    bad[(1 * T + 0) * E + 2] += 0.01; // last head, row 0
    expect(() => checkSdpa({ ...args, got: [o, dq, bad, dv] })).toThrow(/dk\[head 1, row 0, 2\]/);
  });
});

describe('the thread targets', () => {
  it("read each workload's gain off the threaded column and the epoch against torch's best", async () => {
    const { threadTargets } = (await import(`../bench/lib/${'threads-targets'}.mjs`)) as {
      threadTargets: (
        rows: unknown[],
        libraries: string[],
      ) => { target: string; measured: string; met: boolean | null }[];
    };
    const rows = [
      {
        id: 'gemm:512x512x512:AB',
        label: 'GEMM 512',
        better: 'higher',
        values: { nabla: 30, 'nabla-2t': 57 },
      },
      {
        id: 'cnn-lenet:samplesPerSec',
        label: 'LeNet',
        better: 'higher',
        values: { nabla: 100, 'nabla-2t': 130 },
      },
      {
        id: 'epoch:seconds',
        label: 'MNIST epoch',
        better: 'lower',
        values: { nabla: 2.4, 'nabla-2t': 1.6, torch: 1.9, 'torch-2t': 1.2 },
      },
    ];
    const t = threadTargets(rows, ['nabla', 'torch', 'nabla-2t', 'torch-2t']);
    const find = (s: string) => t.find((x) => x.target.startsWith(s))!;
    expect(find('GEMM 512: 2 threads ≥ 1.7x one')).toMatchObject({ measured: '1.90x', met: true });
    expect(find('LeNet: 2 threads ≥ 1.4x one')).toMatchObject({ measured: '1.30x', met: false });
    expect(find('MNIST epoch: 2 threads vs one')).toMatchObject({ measured: '1.50x', met: null });
    expect(find('MNIST epoch at')).toMatchObject({
      measured: '1.60 s (nabla-2t) vs 1.20 s (torch-2t)',
      met: false,
    });
  });
});
