// The built package as users get it: ESM and CommonJS entry points from dist/, and the
// README's example run verbatim through the package's own name.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

describe('the built package', () => {
  it('loads as ESM and computes through the default wasm path', () => {
    const script = `
      import * as nb from 'nabla';
      await nb.init();
      await nb.init(); // idempotent
      const a = nb.tensor([[1, 2], [3, 4]], { dtype: 'float32' });
      console.log(JSON.stringify(a.matmul(a).tolist()));`;
    const out = execFileSync('node', ['--input-type=module', '-e', script], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(JSON.parse(out)).toEqual([
      [7, 10],
      [15, 22],
    ]);
  });

  it('loads as CommonJS', async () => {
    const require = createRequire(import.meta.url);
    const nb = require('../dist/index.cjs') as typeof import('../ts/index.js');
    await nb.init();
    expect(nb.ones([3]).sum().item()).toBe(3);
  });

  it('accepts the wasm as bytes or as a compiled module', () => {
    const script = `
      const nb = require('nabla');
      const fs = require('node:fs');
      const bytes = fs.readFileSync(require.resolve('nabla/nabla.wasm'));
      nb.init({ wasm: new WebAssembly.Module(bytes) }).then(() => console.log(nb.arange(5).sum().item()));`;
    const out = execFileSync('node', ['-e', script], { cwd: root, encoding: 'utf8' });
    expect(out.trim()).toBe('10');
  });

  it("runs the README's example and its loss falls", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const code = /## Example\s+```js\n([\s\S]*?)```/.exec(readme)![1];
    const out = execFileSync('node', ['--input-type=module', '-e', code], {
      cwd: root,
      encoding: 'utf8',
    });
    const losses = [...out.matchAll(/loss ([\d.]+)/g)].map((m) => Number(m[1]));
    expect(losses.length).toBe(5);
    expect(losses[4]).toBeLessThan(losses[0] / 10);
    expect(losses[4]).toBeLessThan(0.01);
  });
});
