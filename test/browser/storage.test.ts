// Weights in a real browser: safetensors Blobs and Files, IndexedDB (shared by the page and
// its workers), the download link, and clear errors from the Node-only file APIs.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startHarness, type Harness } from './harness.js';

type Failure = { name: string; message: string } | null;

let h: Harness;

beforeAll(async () => {
  h = await startHarness();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('weights in chromium', () => {
  it('round-trip through a Blob and a File', async () => {
    const r = await call<Record<string, unknown>>(h.page, 'storage-checks.js', 'blobRoundTrip');
    expect(r.type).toBe('application/octet-stream');
    expect(r.loaded).toBe(r.original);
    expect(r.fromFile).toBe(r.original);
    expect(r.size).toBe(Buffer.from(r.original as string, 'base64').length);
    expect(r.metadata).toEqual({ note: 'blob' });
    // A state dict in file order (the writer's: F32 before I32, then by name), no wrapper.
    expect(r.keys).toEqual([
      '0.bias',
      '0.weight',
      '1.bias',
      '1.weight',
      '4.bias',
      '4.weight',
      '6.bias',
      '6.weight',
      'steps',
    ]);
    expect(r.notABlob).toMatchObject({
      name: 'ValueError',
      message: 'fromBlob: expected a Blob or File, got Uint8Array',
    });
    expect(r.corrupt).toMatchObject({ name: 'ValueError' });
    expect((r.corrupt as Failure)?.message).toMatch(
      /^fromBlob: not a safetensors file: header length \d+ runs past the end of the 15 bytes/,
    );
    expect((r.corruptFile as Failure)?.message).toMatch(
      /^fromBlob: junk\.bin: not a safetensors file: header length/,
    );
    expect((r.corruptMetadata as Failure)?.message).toMatch(
      /^blobMetadata: junk\.bin: not a safetensors file: header length/,
    );
  });

  it('save to, list, load from and delete from IndexedDB', async () => {
    const r = await call<Record<string, unknown>>(h.page, 'storage-checks.js', 'indexedDB');
    expect(r.loaded).toBe(r.original);
    expect(r.metadata).toEqual({ epoch: '3' });
    expect(r.keys).toEqual(['model-a']);
    expect(r.otherKeys).toEqual(['model-b']);
    expect(r.deleted).toBe(true);
    expect(r.deletedAgain).toBe(false);
    expect(r.missing).toMatchObject({
      name: 'ValueError',
      message: 'loadFromIndexedDB: nothing saved under "model-a" in database "nabla" (saved: none)',
    });
    expect(r.missingMetadata).toMatchObject({
      name: 'ValueError',
      message: 'indexedDBMetadata: nothing saved under "model-a" in database "nabla" (saved: none)',
    });
    expect((r.badKey as Failure)?.message).toMatch(
      /^saveToIndexedDB: the key must be a non-empty string/,
    );
  });

  it('load on the page what a worker saved to IndexedDB', async () => {
    const r = await call<{ trained: string; loaded: string; metadata: Record<string, string> }>(
      h.page,
      'storage-checks.js',
      'indexedDBFromWorker',
    );
    expect(r.loaded).toBe(r.trained);
    expect(r.metadata).toEqual({ from: 'worker' });
  });

  it('download a .safetensors file', async () => {
    const [download, expected] = await Promise.all([
      h.page.waitForEvent('download'),
      call<string>(h.page, 'storage-checks.js', 'download'),
    ]);
    expect(download.suggestedFilename()).toBe('weights.safetensors');
    const path = await download.path();
    expect(readFileSync(path).toString('base64')).toBe(expected);
  });

  it('reject the Node-only file APIs with a ValueError naming the browser ones', async () => {
    const failures = await call<Failure[]>(h.page, 'storage-checks.js', 'nodeOnly');
    expect(failures).toHaveLength(5);
    for (const f of failures) {
      expect(f).toMatchObject({ name: 'ValueError' });
      expect(f!.message).toMatch(
        /is a Node built-in, and this is nabla's browser build.*saveToIndexedDB/,
      );
    }
  });

  it('leave no errors on the page', () => {
    expect(h.errors).toEqual([]);
  });
});
