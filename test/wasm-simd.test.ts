// The shipped core must really be SIMD code: disassemble it and count f32x4 instructions.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

function disassemble(path: string): string {
  try {
    return execFileSync('wasm-objdump', ['-d', path], { encoding: 'utf8', maxBuffer: 256 << 20 });
  } catch (e) {
    throw new Error(`wasm-objdump (Debian package wabt) is needed for this test: ${String(e)}`);
  }
}

const built = [
  fileURLToPath(new URL('../ts/wasm/nabla.wasm', import.meta.url)),
  fileURLToPath(new URL('../dist/nabla.wasm', import.meta.url)),
];

describe('the built wasm', () => {
  for (const path of built) {
    it(`${path.split('/').slice(-2).join('/')} contains SIMD instructions`, () => {
      expect(existsSync(path)).toBe(true);
      const text = disassemble(path);
      const count = (op: string): number => text.split(op).length - 1;
      expect(count('f32x4.mul')).toBeGreaterThan(20);
      expect(count('f32x4.add')).toBeGreaterThan(20);
      expect(count('v128.load')).toBeGreaterThan(20);
    });
  }

  const relaxed = fileURLToPath(new URL('../dist/nabla-relaxed.wasm', import.meta.url));
  it.runIf(existsSync(relaxed))('dist/nabla-relaxed.wasm fuses the GEMM multiply-adds', () => {
    const text = disassemble(relaxed);
    expect(text.split('f32x4.relaxed_madd').length - 1).toBeGreaterThan(8);
  });
});
