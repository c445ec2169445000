// nb.io safetensors: files written by a reference-conformant Python writer (torch 1.13 state
// dicts, scripts/fixtures/make_io_fixtures.py), byte-exact writing, round trips, and every
// malformed-file check.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { Module, Parameter } from '../ts/nn/module.js';

type Value = number | 'nan' | 'inf' | '-inf';
interface Spec {
  shape: number[];
  values: Value[];
  dtype?: string;
}
interface FileCase {
  file: string;
  metadata: Record<string, string>;
  tensors: Record<string, Spec>;
}
const fixtures = JSON.parse(readFileSync(new URL('./fixtures/io.json', import.meta.url), 'utf8'))
  .safetensors as {
  dtypes: FileCase & { order: string[] };
  mlp: FileCase & { input: Spec; output: Spec };
  mixed: FileCase;
};

const fixtureBytes = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));

const num = (v: Value): number =>
  v === 'nan' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v;

/** Exact comparison that tells -0 from 0 and accepts NaN for NaN. */
function expectValues(t: nb.Tensor, spec: Spec): void {
  expect(t.shape).toEqual(spec.shape);
  const got = Array.from(t.toArray());
  const want = spec.values.map(num);
  expect(got.length).toBe(want.length);
  got.forEach((v, i) => {
    if (!Object.is(v, want[i])) throw new Error(`element ${i}: got ${v}, expected ${want[i]}`);
  });
}

const utf8 = new TextEncoder();

/** A file from a raw header string (unpadded) and a data section. */
function build(header: string, data: Uint8Array | number = 0): Uint8Array {
  const json = utf8.encode(header);
  const body = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + json.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(body, 8 + json.length);
  return out;
}

const entry = (dtype: string, shape: number[], begin: number, end: number): string =>
  JSON.stringify({ dtype, shape, data_offsets: [begin, end] });

/**
 * Both readers reject `bytes` with `message`; safetensorsMetadata too unless the fault is in
 * the tensor data, which it never reads.
 */
function expectBad(bytes: Uint8Array, message: RegExp, inHeader = true): void {
  expect(() => nb.io.loadSafetensors(bytes)).toThrow(nb.ValueError);
  expect(() => nb.io.loadSafetensors(bytes)).toThrow(message);
  if (!inHeader) return;
  const meta = new RegExp(message.source.replace(/^(\^?)loadSafetensors/, '$1safetensorsMetadata'));
  expect(() => nb.io.safetensorsMetadata(bytes)).toThrow(nb.ValueError);
  expect(() => nb.io.safetensorsMetadata(bytes)).toThrow(meta);
}

beforeAll(async () => {
  await nb.init();
});

describe('reading files written by the Python writer', () => {
  it('converts F32, F16, BF16, I32, I64, 0-d and empty tensors exactly', () => {
    const bytes = fixtureBytes(fixtures.dtypes.file);
    const tensors = nb.io.loadSafetensors(bytes);
    expect(nb.io.safetensorsMetadata(bytes)).toEqual({ format: 'pt' });
    // File order: the writer sorts by dtype (I64, F32, I32, BF16, F16), then by name.
    expect(Object.keys(tensors)).toEqual(['i64', 'empty', 'f32', 'scalar', 'i32', 'bf16', 'f16']);
    for (const [name, spec] of Object.entries(fixtures.dtypes.tensors)) {
      const t = tensors[name];
      expect(t.dtype).toBe(spec.dtype === 'I32' || spec.dtype === 'I64' ? 'int32' : 'float32');
      expectValues(t, spec);
      t.dispose();
    }
  });

  it('loads a PyTorch nn.Sequential state dict that computes what torch computed', () => {
    const tensors = nb.io.loadSafetensors(fixtureBytes(fixtures.mlp.file));
    expect(Object.keys(tensors).sort()).toEqual(['0.bias', '0.weight', '2.bias', '2.weight']);
    for (const [name, spec] of Object.entries(fixtures.mlp.tensors))
      expectValues(tensors[name], spec);
    const { input, output } = fixtures.mlp;
    const y = nb.tidy(() => {
      const x = nb.tensor(Float32Array.from(input.values.map(num)), { shape: input.shape });
      const h = x.matmul(tensors['0.weight'].mT).add(tensors['0.bias']).relu();
      return h.matmul(tensors['2.weight'].mT).add(tensors['2.bias']);
    });
    expect(y.shape).toEqual(output.shape);
    Array.from(y.toArray()).forEach((v, i) => expect(v).toBeCloseTo(num(output.values[i]), 5));
  });

  it('wires into Module.loadStateDict', () => {
    class Linear extends Module {
      weight: nb.Tensor;
      bias: nb.Tensor;
      constructor(i: number, o: number) {
        super();
        this.weight = Parameter(nb.zeros([o, i]));
        this.bias = Parameter(nb.zeros([o]));
      }
      forward(): void {}
    }
    class Mlp extends Module {
      '0' = new Linear(4, 8);
      '2' = new Linear(8, 3);
      forward(): void {}
    }
    const model = new Mlp();
    // The contract: what loadSafetensors returns goes straight into loadStateDict (strictly).
    const tensors = nb.io.loadSafetensors(fixtureBytes(fixtures.mlp.file));
    expect(model.loadStateDict(tensors)).toEqual({ missingKeys: [], unexpectedKeys: [] });
    Object.values(tensors).forEach((t) => t.dispose());
    expectValues(model['2'].weight, fixtures.mlp.tensors['2.weight']);
  });
});

describe('writing', () => {
  it('reproduces the Python writer byte for byte', () => {
    for (const c of [fixtures.mlp, fixtures.mixed]) {
      const bytes = fixtureBytes(c.file);
      const tensors = nb.io.loadSafetensors(bytes);
      const metadata = nb.io.safetensorsMetadata(bytes);
      expect(metadata).toEqual(c.metadata);
      for (const [name, spec] of Object.entries(c.tensors)) expectValues(tensors[name], spec);
      expect(nb.io.saveSafetensors(tensors, metadata)).toEqual(bytes);
    }
  });

  it('orders names by UTF-8 bytes, as the reference does, not by UTF-16 units', () => {
    const tensors = nb.io.loadSafetensors(fixtureBytes(fixtures.mixed.file));
    const f32 = Object.keys(tensors).filter((k) => tensors[k].dtype === 'float32');
    expect(f32).toEqual(['b', 'c.weight', 'café', 'quote"and\\slash\n', '\uff21', '\u{1f600}']);
    expect(Object.keys(tensors).slice(-2)).toEqual(['B', 'a']); // I32 after F32
  });

  it("matches the reference implementation's own test vectors", () => {
    // safetensors/src/tensor.rs: test_empty, test_serialization, test_serialization_forced_alignement.
    const empty = [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32];
    expect(Array.from(nb.io.saveSafetensors({}))).toEqual(empty);
    const withMeta = nb.io.saveSafetensors({}, { framework: 'pt' });
    expect(withMeta[0]).toBe(40);
    expect(new TextDecoder().decode(withMeta.subarray(8))).toBe(
      '{"__metadata__":{"framework":"pt"}}     ',
    );
    const data = nb.arange(6).float();
    const a = nb.io.saveSafetensors({ 'attn.0': data.reshape([1, 2, 3]) });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    expect(a[0]).toBe(64);
    expect(new TextDecoder().decode(a.subarray(8, 72))).toBe(header);
    expect(Array.from(a.subarray(72))).toEqual([
      0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ]);
    const b = nb.io.saveSafetensors({ attn0: data.reshape([1, 1, 2, 3]) });
    expect(b[0]).toBe(72);
    expect(new TextDecoder().decode(b.subarray(8, 80))).toBe(
      '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ',
    );
  });

  it('round-trips float32 and int32 tensors of every rank', () => {
    nb.manualSeed(3);
    const state = {
      w: nb.randn([3, 4, 2]),
      b: nb.randn([4]),
      steps: nb.tensor(new Int32Array([-5, 0, 2 ** 31 - 1]), { shape: [3] }),
      s: nb.tensor(2.25),
      none: nb.zeros([0, 5]),
    };
    const bytes = nb.io.saveSafetensors(state, { note: 'x' });
    const header = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(header % 8).toBe(0);
    const tensors = nb.io.loadSafetensors(bytes);
    expect(nb.io.safetensorsMetadata(bytes)).toEqual({ note: 'x' });
    for (const [k, t] of Object.entries(state)) {
      expect([tensors[k].shape, tensors[k].dtype]).toEqual([t.shape, t.dtype]);
      expect(tensors[k].toArray()).toEqual(t.toArray());
    }
    expect(nb.io.loadSafetensors(nb.io.saveSafetensors({}))).toEqual({});
    expect(nb.io.safetensorsMetadata(nb.io.saveSafetensors({}))).toEqual({});
  });

  it('keeps names like __proto__ as ordinary keys', () => {
    const state: Record<string, nb.Tensor> = {};
    Object.defineProperty(state, '__proto__', { value: nb.ones([1]), enumerable: true });
    const tensors = nb.io.loadSafetensors(nb.io.saveSafetensors(state));
    expect(Object.keys(tensors)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(tensors)).toBe(Object.prototype);
  });

  it('rejects what it cannot write', () => {
    expect(() => nb.io.saveSafetensors({ __metadata__: nb.ones([1]) })).toThrow(
      /saveSafetensors: "__metadata__" is reserved/,
    );
    expect(() => nb.io.saveSafetensors({ w: [1, 2] as unknown as nb.Tensor })).toThrow(
      /saveSafetensors: "w" is not a Tensor/,
    );
    expect(() => nb.io.saveSafetensors({}, { n: 1 as unknown as string })).toThrow(
      /saveSafetensors: metadata values must be strings; "n" is number/,
    );
    const gone = nb.ones([2]);
    gone.dispose();
    expect(() => nb.io.saveSafetensors({ gone })).toThrow(nb.DisposedError);
  });

  it('saves and loads files in Node', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nabla-io-')), 'w.safetensors');
    await nb.io.saveFile(path, { w: nb.tensor([1.5, -2]) }, { format: 'pt' });
    const tensors = await nb.io.loadFile(path);
    expect(Object.keys(tensors)).toEqual(['w']);
    expect(Array.from(tensors.w.toArray())).toEqual([1.5, -2]);
    expect(await nb.io.fileMetadata(path)).toEqual({ format: 'pt' });
    await nb.io.saveFile(path, { w: nb.tensor([3]) });
    expect(await nb.io.fileMetadata(path)).toEqual({});
  });
});

describe('the state-dict contract', () => {
  class Linear extends Module {
    weight: nb.Tensor;
    bias: nb.Tensor;
    constructor(i: number, o: number) {
      super();
      this.weight = Parameter(nb.zeros([o, i]));
      this.bias = Parameter(nb.zeros([o]));
    }
    forward(): void {}
  }

  it('loadStateDict takes what every loader returns, with metadata read separately', async () => {
    nb.manualSeed(4);
    const source = new Linear(3, 2);
    source.weight = Parameter(nb.randn([2, 3]));
    const bytes = nb.io.saveSafetensors(source.stateDict(), { epoch: '7' });
    const path = join(mkdtempSync(join(tmpdir(), 'nabla-io-')), 'lin.safetensors');
    writeFileSync(path, bytes);
    const msg = { format: 'safetensors' as const, bytes: bytes.slice().buffer };
    for (const sd of [
      nb.io.loadSafetensors(bytes),
      await nb.io.loadFile(path),
      await nb.io.fromBlob(new Blob([bytes.slice()])),
      nb.worker.unpackWeights(msg),
    ]) {
      const target = new Linear(3, 2);
      expect(target.loadStateDict(sd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
      expect(target.weight.tolist()).toEqual(source.weight.tolist());
      Object.values(sd).forEach((t) => t.dispose());
    }
    expect(nb.io.safetensorsMetadata(bytes)).toEqual({ epoch: '7' });
    expect(await nb.io.fileMetadata(path)).toEqual({ epoch: '7' });
    expect(await nb.io.blobMetadata(new Blob([bytes.slice()]))).toEqual({ epoch: '7' });
  });

  it('metadata readers make no tensors and check the whole header against the file size', async () => {
    const bytes = nb.io.saveSafetensors({ w: nb.ones([4]) }, { a: 'b' });
    const before = nb.memory().tensors;
    expect(nb.io.safetensorsMetadata(bytes)).toEqual({ a: 'b' });
    expect(nb.memory().tensors).toBe(before);
    // Cut the last tensor short: the header alone is intact, but it no longer fits the file.
    const cut = bytes.subarray(0, bytes.length - 4);
    const dir = mkdtempSync(join(tmpdir(), 'nabla-io-'));
    writeFileSync(join(dir, 'cut.safetensors'), cut);
    const past =
      /tensor "w" data_offsets \[0, 16\] run past the end of the data section \(12 bytes\)/;
    expect(() => nb.io.safetensorsMetadata(cut)).toThrow(past);
    await expect(nb.io.fileMetadata(join(dir, 'cut.safetensors'))).rejects.toThrow(
      new RegExp(`^fileMetadata: ${escape(join(dir, 'cut.safetensors'))}: ${past.source}`),
    );
    await expect(nb.io.blobMetadata(new Blob([cut.slice()]))).rejects.toThrow(past);
    expect(() => nb.io.safetensorsMetadata([1, 2] as unknown as Uint8Array)).toThrow(
      'safetensorsMetadata: expected a Uint8Array or ArrayBuffer, got Array',
    );
    expect(() => nb.io.loadSafetensors('w' as unknown as Uint8Array)).toThrow(
      'loadSafetensors: expected a Uint8Array or ArrayBuffer, got string',
    );
    // An ArrayBuffer (what fetch's arrayBuffer() gives) reads like its bytes.
    const buffer = bytes.slice().buffer;
    expect(nb.io.safetensorsMetadata(buffer)).toEqual({ a: 'b' });
    expect(nb.io.loadSafetensors(buffer).w.tolist()).toEqual([1, 1, 1, 1]);
  });
});

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('file errors name the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nabla-io-'));

  it('a missing file, a directory, a missing directory', async () => {
    const missing = join(dir, 'nope.safetensors');
    for (const [op, call] of [
      ['loadFile', nb.io.loadFile],
      ['fileMetadata', nb.io.fileMetadata],
    ] as const) {
      await expect(call(missing)).rejects.toThrow(nb.ValueError);
      await expect(call(missing)).rejects.toThrow(`${op}: no such file: ${missing}`);
      await expect(call(dir)).rejects.toThrow(`${op}: ${dir} is a directory, not a file`);
      await expect(call('' as string)).rejects.toThrow(
        `${op}: the path must be a non-empty string`,
      );
    }
    const deep = join(dir, 'no-such-dir', 'w.safetensors');
    await expect(nb.io.saveFile(deep, { w: nb.ones([1]) })).rejects.toThrow(
      `saveFile: cannot write ${deep}: its directory does not exist`,
    );
  });

  it('a file of another format says it is not a safetensors file, and what it looks like', async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ['notes.txt', utf8.encode('hello, these are not weights'), /header length \d+ runs past/],
      ['model.pt', Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0, 0]), /it is a zip archive/],
      ['w.gz', Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), /it is gzip-compressed/],
      ['old.pt', Uint8Array.from([0x80, 2, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9]), /pickle/],
      ['short.bin', Uint8Array.from([1, 2, 3]), /need at least 8 bytes .*, got 3/],
    ];
    for (const [name, bytes, why] of cases) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      for (const op of ['loadFile', 'fileMetadata'] as const) {
        const err = await nb.io[op](path).then(
          () => null,
          (e: Error) => e,
        );
        expect(err, name).toBeInstanceOf(nb.ValueError);
        expect(err!.message, name).toMatch(
          new RegExp(`^${op}: ${escape(path)}: not a safetensors file: `),
        );
        expect(err!.message, name).toMatch(why);
      }
      expect(() => nb.io.loadSafetensors(bytes)).toThrow(
        /^loadSafetensors: not a safetensors file: /,
      );
    }
    // A JSON header that is not an object, and one that is not JSON.
    const arr = join(dir, 'arr.safetensors');
    writeFileSync(arr, build('[1, 2]'));
    await expect(nb.io.loadFile(arr)).rejects.toThrow(
      `loadFile: ${arr}: not a safetensors file: the header must be a JSON object`,
    );
  });

  it('a damaged safetensors file names the file and the fault', async () => {
    const bytes = nb.io.saveSafetensors({ w: nb.ones([2]) });
    const path = join(dir, 'damaged.safetensors');
    writeFileSync(path, bytes.subarray(0, bytes.length - 1));
    await expect(nb.io.loadFile(path)).rejects.toThrow(
      `loadFile: ${path}: tensor "w" data_offsets [0, 8] run past the end of the data section (7 bytes)`,
    );
  });
});

describe('malformed files', () => {
  const good = entry('I32', [2, 2], 0, 16);

  it('accepts whitespace around the header, as the reference reader does', () => {
    expect(nb.io.loadSafetensors(build('\t\n{}\r '))).toEqual({});
    expect(nb.io.loadSafetensors(build(`{"t":${good}}`, 16)).t.shape).toEqual([2, 2]);
  });

  it('checks the header length', () => {
    expectBad(
      new Uint8Array(5),
      /^loadSafetensors: not a safetensors file: need at least 8 bytes for the header length, got 5$/,
    );
    const long = build(`{"t":${good}}`, 16);
    new DataView(long.buffer).setBigUint64(0, 2n ** 40n, true);
    expectBad(
      long,
      /^loadSafetensors: not a safetensors file: header length 1099511627776 runs past the end of the 81 bytes \(73 after the length\)$/,
    );
  });

  it('checks the header text', () => {
    expectBad(
      build('{"t":'),
      /^loadSafetensors: not a safetensors file: the header is not valid JSON/,
    );
    const bad = build('{"t":1} ');
    bad[bad.length - 1] = 0xff;
    expectBad(bad, /^loadSafetensors: not a safetensors file: the header is not valid UTF-8$/);
    expectBad(
      build('[]'),
      /^loadSafetensors: not a safetensors file: the header must be a JSON object$/,
    );
    expectBad(build(`{"t":${good},"t":${good}}`, 16), /repeats the key "t"/);
    expectBad(build(`{"t":${good},"\\u0074":${good}}`, 16), /repeats the key "t"/);
    expectBad(build('{"__metadata__":{"a":"1","a":"2"}}'), /repeats the key "a"/);
    expectBad(
      build('{"__metadata__":{"a":1}}'),
      /__metadata__ must map strings to strings; "a" is 1/,
    );
    expectBad(build('{"__metadata__":[]}'), /__metadata__ must be an object of strings/);
  });

  it('checks each entry', () => {
    expectBad(build(`{"t":${entry('F33', [1], 0, 4)}}`, 4), /tensor "t" has unknown dtype "F33"/);
    expectBad(
      build(`{"t":${entry('F8_E4M3', [4], 0, 4)}}`, 4),
      /tensor "t" has dtype F8_E4M3, which nabla cannot read/,
    );
    expectBad(
      build(`{"t":${entry('I32', [2, 2], 0, 8)}}`, 8),
      /tensor "t": shape \[2, 2\] of I32 needs 16 bytes but data_offsets \[0, 8\] span 8/,
    );
    expectBad(
      build(`{"t":${entry('I32', [2, -2], 0, 16)}}`, 16),
      /tensor "t" has an invalid shape \[2,-2\]/,
    );
    expectBad(
      build(`{"t":${entry('I32', [1], 8, 4)}}`, 8),
      /tensor "t" has invalid data_offsets \[8,4\]/,
    );
    expectBad(
      build('{"t":{"dtype":"I32","shape":[1],"data_offsets":[0]}}', 4),
      /invalid data_offsets \[0\]/,
    );
    expectBad(build('{"t":3}'), /tensor "t" must be an object with dtype, shape and data_offsets/);
  });

  it('checks that the offsets exactly tile the data section', () => {
    const truncated = build(`{"t":${good}}`, 16).subarray(0, -4);
    expectBad(
      truncated,
      /tensor "t" data_offsets \[0, 16\] run past the end of the data section \(12 bytes\)/,
    );
    const two = (a: string, b: string, n: number): Uint8Array => build(`{"a":${a},"b":${b}}`, n);
    expectBad(
      two(entry('F32', [4], 0, 16), entry('F32', [4], 8, 24), 24),
      /tensors "a" \[0, 16\] and "b" \[8, 24\] overlap/,
    );
    expectBad(
      two(entry('F32', [2], 0, 8), entry('F32', [2], 12, 20), 20),
      /4 unused bytes between "a" \(ends at 8\) and "b" \(starts at 12\)/,
    );
    expectBad(
      build(`{"t":${entry('F32', [1], 4, 8)}}`, 8),
      /4 unused bytes at the start of the data section before "t"/,
    );
    expectBad(
      build(`{"t":${good}}`, 20),
      /the tensors cover 16 bytes but the data section has 20 \(4 trailing bytes\)/,
    );
    // Offsets may appear in any order in the JSON; the reader sorts them.
    const swapped = two(entry('F32', [2], 8, 16), entry('F32', [2], 0, 8), 16);
    expect(Object.keys(nb.io.loadSafetensors(swapped))).toEqual(['b', 'a']);
  });

  it('rejects 64-bit integers outside int32 and frees what it made', () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setBigInt64(8, 2n ** 31n, true);
    const before = nb.memory().tensors;
    expectBad(
      build(
        `{"ok":${entry('F32', [1], 0, 4)},"big":${entry('I64', [1], 8, 16)},"pad":${entry('F32', [1], 4, 8)}}`,
        data,
      ),
      /tensor "big" \(I64\) holds 2147483648 at flat index 0, outside int32's range/,
      false,
    );
    expect(nb.memory().tensors).toBe(before);
  });
});
