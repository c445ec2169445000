// The package as npm ships it: `npm pack` makes the tarball, which is installed offline into an
// empty temporary project (nabla has no runtime dependencies). There, ESM `import`, CommonJS
// `require` and a strict TypeScript type-check of small programs must all work, resolving
// nabla from the project's node_modules, and the tarball must hold only what a user needs.
// Needs `npm run build` first (dist/), like test/package.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const dir = realpathSync(mkdtempSync(join(tmpdir(), 'nabla-pack-')));
const project = join(dir, 'project');

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}
let pack: PackResult;

/** npm without the settings of the npm that runs this test (vitest may run under `npm test`). */
function npm(args: string[], cwd: string): string {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')),
  );
  return execFileSync('npm', args, {
    cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs a file with node in the temporary project; returns stdout. */
const node = (file: string): string =>
  execFileSync('node', [file], { cwd: project, encoding: 'utf8' }).trim();

/** Runs the repository's own TypeScript on `files` in the project; exit status and output. */
function typecheck(files: string[]): { status: number | null; out: string } {
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: 'NodeNext',
      moduleResolution: 'NodeNext',
      lib: ['ES2022', 'DOM'],
      types: [],
      strict: true,
      noEmit: true,
      skipLibCheck: false, // nabla's .d.ts files are checked too
    },
    files,
  };
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(config, null, 2));
  const r = spawnSync('node', [tsc, '-p', 'tsconfig.json'], { cwd: project, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'index.js'))) {
    throw new Error('test/pack.test.ts needs the built package: run `npm run build` first');
  }
  pack = (JSON.parse(npm(['pack', '--json', '--pack-destination', dir], root)) as PackResult[])[0];
  console.log(
    `npm pack: ${pack.filename}, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked, ` +
      `${pack.entryCount} files:\n${pack.files.map((f) => `  ${f.path} ${f.size}`).join('\n')}`,
  );
  mkdirSync(project);
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'nabla-pack-check', version: '0.0.0', private: true }),
  );
  npm(['install', '--offline', '--no-audit', '--no-fund', join(dir, pack.filename)], project);
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the packed tarball', () => {
  it('holds only what a user needs', () => {
    const paths = pack.files.map((f) => f.path).sort();
    for (const needed of [
      'package.json',
      'README.md',
      'dist/index.js',
      'dist/index.cjs',
      'dist/index.d.ts',
      'dist/index.d.cts',
      'dist/browser.js',
      'dist/nabla.wasm',
      'dist/nabla-relaxed.wasm',
      'dist/nabla-threads.wasm',
      'dist/nabla-threads-relaxed.wasm',
      'dist/nabla-worker.js',
    ])
      expect(paths).toContain(needed);
    // Only the bundles, their types, chunks and source maps, and the wasm core: no sources,
    // tests, fixtures, Rust crate, examples or benchmarks.
    const allowed =
      /^(package\.json|README\.md|LICENSE(\.\w+)?|dist\/[\w.-]+\.(js|cjs|d\.ts|d\.cts|wasm|map))$/;
    expect(paths.filter((p) => !allowed.test(p))).toEqual([]);
    // Every source map belongs to a shipped bundle (no leftovers of older builds).
    for (const p of paths.filter((f) => f.endsWith('.map')))
      expect(paths, p).toContain(p.slice(0, -'.map'.length));
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
      dependencies?: object;
    };
    expect(manifest.dependencies ?? {}).toEqual({});
    // A guard against shipping something by mistake, not a target: three bundles with source
    // maps (which embed their sources) grow with the library, and four wasm cores (plain,
    // relaxed, threads, threads + relaxed) take about 2 MB.
    expect(pack.size).toBeLessThan(3e6);
    expect(pack.unpackedSize).toBeLessThan(10e6);
  });

  it('installs offline into an empty project, as nabla with no dependencies', () => {
    const installed = join(project, 'node_modules', 'nabla');
    expect(existsSync(join(installed, 'dist', 'nabla.wasm'))).toBe(true);
    expect(existsSync(join(installed, 'ts'))).toBe(false);
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    expect(Object.keys(lock.packages).sort()).toEqual(['', 'node_modules/nabla']);
  });

  it('works through ESM import, from the installed copy', () => {
    writeFileSync(
      join(project, 'esm.mjs'),
      `import * as nb from 'nabla';
      await nb.init();
      const a = nb.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
      const lin = new nb.nn.Linear(2, 1);
      const copy = new nb.nn.Linear(2, 1);
      copy.loadStateDict(nb.io.loadSafetensors(nb.io.saveSafetensors(lin.stateDict())));
      console.log(JSON.stringify({
        from: import.meta.resolve('nabla'),
        matmul: a.matmul(a.T).tolist(),
        same: copy.weight.tolist()[0].every((v, i) => v === lin.weight.tolist()[0][i]),
      }));`,
    );
    const r = JSON.parse(node('esm.mjs')) as { from: string; matmul: number[][]; same: boolean };
    expect(fileURLToPath(r.from)).toBe(join(project, 'node_modules', 'nabla', 'dist', 'index.js'));
    expect(r.matmul).toEqual([
      [5, 11],
      [11, 25],
    ]);
    expect(r.same).toBe(true);
  });

  it('works through CommonJS require, from the installed copy', () => {
    writeFileSync(
      join(project, 'cjs.cjs'),
      `const nb = require('nabla');
      nb.init().then(() => {
        console.log(JSON.stringify({
          from: require.resolve('nabla'),
          sum: nb.arange(5).sum().item(),
          isTensor: nb.ones([2]) instanceof nb.Tensor,
        }));
      });`,
    );
    const r = JSON.parse(node('cjs.cjs')) as { from: string; sum: number; isTensor: boolean };
    expect(r.from).toBe(join(project, 'node_modules', 'nabla', 'dist', 'index.cjs'));
    expect([r.sum, r.isTensor]).toEqual([10, true]);
  });

  it('type-checks a small program (ESM and CommonJS) against the shipped types, strictly', () => {
    const program = (importLine: string): string => `${importLine}
      async function main(): Promise<number[]> {
        await nb.init();
        const x: nb.Tensor = nb.randn([4, 3]);
        const model = new nb.nn.Sequential(new nb.nn.Linear(3, 2), new nb.nn.ReLU());
        const sd: Record<string, nb.Tensor> = nb.io.loadSafetensors(
          nb.io.saveSafetensors(model.stateDict(), { note: 'x' }),
        );
        const meta: Record<string, string> = nb.io.safetensorsMetadata(new Uint8Array(8));
        model.loadStateDict(sd);
        const y = model.forward(x) as nb.Tensor;
        const shape: readonly number[] = y.T.shape;
        void meta;
        return [...shape];
      }
      void main();
    `;
    writeFileSync(join(project, 'main.mts'), program("import * as nb from 'nabla';"));
    writeFileSync(join(project, 'main.cts'), program("import nb = require('nabla');"));
    // And a wrong type in each module system, to show the check sees nabla's real types. One
    // tsc run: the only errors must be those two.
    const wrong = (importLine: string): string =>
      `${importLine}\nexport const s: string = nb.ones([1]).shape;\n`;
    writeFileSync(join(project, 'bad.mts'), wrong("import * as nb from 'nabla';"));
    writeFileSync(join(project, 'bad.cts'), wrong("import nb = require('nabla');"));
    const r = typecheck(['main.mts', 'main.cts', 'bad.mts', 'bad.cts']);
    expect(r.status).not.toBe(0);
    const error = "error TS2322: Type 'readonly number[]' is not assignable to type 'string'.";
    expect(r.out.trim().split('\n').sort()).toEqual([
      `bad.cts(2,14): ${error}`,
      `bad.mts(2,14): ${error}`,
    ]);
  });
});
