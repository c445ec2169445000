// Page-side checks for nb.data in the browser build: gzip through DecompressionStream (there
// is no zlib here) and IDX bytes read from it.
import { base64, nabla, rejection } from './util.js';

const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

/** Decompresses `gz`, reads it as IDX, and reports the errors for cut and damaged copies. */
export async function gunzipChecks(gz, cut, damaged) {
  const nb = await nabla();
  const raw = await nb.data.gunzip(bytes(gz));
  const t = nb.data.readIdx(raw);
  return {
    hasProcess: typeof process !== 'undefined',
    raw: base64(raw),
    shape: t.shape,
    values: Array.from(t.toArray()),
    cut: await rejection(nb.data.gunzip(bytes(cut))),
    damaged: await rejection(nb.data.gunzip(bytes(damaged))),
    notGzip: await rejection(nb.data.gunzip(raw)),
  };
}
