// nb.data.gunzip in a real browser, where the browser build has no zlib and decompresses with
// DecompressionStream: the bytes come back exactly, and bad data is a typed error.
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startHarness, toBase64, type Harness } from './harness.js';

type Failure = { name: string; message: string } | null;

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('gzip in chromium', () => {
  it('gunzips through DecompressionStream and rejects cut or damaged data', async () => {
    // A uint8 IDX file [3, 50] with a repeating pattern (so it compresses).
    const idx = new Uint8Array(4 + 8 + 150);
    idx.set([0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 50]);
    for (let i = 0; i < 150; i++) idx[12 + i] = (i * 5) % 17;
    const gz = new Uint8Array(gzipSync(idx));
    const damaged = gz.slice();
    damaged[gz.length - 6] ^= 0xff; // the trailer's CRC-32
    const r = await call<{
      hasProcess: boolean;
      raw: string;
      shape: number[];
      values: number[];
      cut: Failure;
      damaged: Failure;
      notGzip: Failure;
    }>(
      h.page,
      'data-checks.js',
      'gunzipChecks',
      toBase64(gz),
      toBase64(gz.subarray(0, gz.length - 12)),
      toBase64(damaged),
    );
    expect(r.hasProcess).toBe(false);
    expect(r.raw).toBe(toBase64(idx));
    expect(r.shape).toEqual([3, 50]);
    expect(r.values).toEqual(Array.from(idx.subarray(12)));
    expect(r.cut).toMatchObject({ name: 'ValueError' });
    expect(r.cut!.message).toMatch(/^gunzip: truncated gzip data \(/);
    expect(r.damaged).toMatchObject({ name: 'ValueError' });
    expect(r.damaged!.message).toMatch(/^gunzip: corrupt gzip data \(/);
    expect(r.notGzip).toMatchObject({
      name: 'ValueError',
      message: 'gunzip: not gzip data (it starts with 0x00 0x00; gzip starts with 0x1f 0x8b)',
    });
    expect(h.errors).toEqual([]);
  });
});
