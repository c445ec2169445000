// The ABI cannot drift: abi.rs (parsed as text), ts/wasm/abi.ts and the built module must
// agree on every export, its parameter names and arity, and every op code.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONSTANT_GROUPS, EXPORTS, MAX_DIMS } from '../ts/wasm/abi.js';

const rust = readFileSync(new URL('../crate/src/abi.rs', import.meta.url), 'utf8');
const wasmBytes = readFileSync(new URL('../ts/wasm/nabla.wasm', import.meta.url));

/** `name -> parameter names` for every `pub (unsafe) extern "C" fn` in abi.rs. */
function rustExports(): Map<string, { params: string[]; returns: boolean }> {
  const out = new Map<string, { params: string[]; returns: boolean }>();
  const re =
    /#\[no_mangle\]\s*pub\s+(?:unsafe\s+)?extern\s+"C"\s+fn\s+(\w+)\s*\(([^)]*)\)\s*(->\s*\w+)?/g;
  for (const m of rust.matchAll(re)) {
    const params = m[2]
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)
      .map((p) => p.split(':')[0].trim());
    out.set(m[1], { params, returns: m[3] !== undefined });
  }
  return out;
}

function rustConstants(): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of rust.matchAll(/pub const (\w+): u32 = (\d+);/g)) out.set(m[1], Number(m[2]));
  return out;
}

describe('ABI', () => {
  it('abi.rs and abi.ts declare the same exports with the same parameters', () => {
    const fromRust = rustExports();
    expect(fromRust.size).toBeGreaterThan(20);
    expect([...fromRust.keys()].sort()).toEqual(Object.keys(EXPORTS).sort());
    for (const [name, sig] of Object.entries(EXPORTS)) {
      expect({ name, params: [...sig.params], returns: sig.returns }).toEqual({
        name,
        ...fromRust.get(name),
      });
    }
  });

  it('the built module exports exactly those functions, with matching arity', async () => {
    const module = await WebAssembly.compile(wasmBytes);
    const instance = await WebAssembly.instantiate(module, {});
    const fns = WebAssembly.Module.exports(module).filter((e) => e.kind === 'function');
    expect(fns.map((e) => e.name).sort()).toEqual(Object.keys(EXPORTS).sort());
    for (const [name, sig] of Object.entries(EXPORTS)) {
      const f = instance.exports[name] as (...args: number[]) => unknown;
      expect({ name, arity: f.length }).toEqual({ name, arity: sig.params.length });
    }
    expect(WebAssembly.Module.imports(module)).toEqual([]);
  });

  it('op codes agree', () => {
    const consts = rustConstants();
    expect(consts.get('MAX_DIMS')).toBe(MAX_DIMS);
    for (const [prefix, table] of Object.entries(CONSTANT_GROUPS)) {
      const fromRust = [...consts.entries()].filter(([k]) => k.startsWith(prefix));
      const fromTs = Object.entries(table).map(([k, v]) => [prefix + k, v] as const);
      expect(new Map(fromRust)).toEqual(new Map(fromTs));
    }
  });
});
