// The fuzz cases, shared by the CLI (scripts/fuzz/run.mjs, which adds the hang watchdog and
// crash restarts) and the CI slice (test/fuzz.test.ts). Every case is a pure function of
// (seed, surface, index), so a failure reproduces from its line in the report.
//
// A case's outcome is one of: ok (a correct result), typed (a NablaError), generic (another
// Error), trap (a WebAssembly.RuntimeError), garbage (a result that disagrees with the
// reference, or hostile input accepted), corrupted (a live tensor changed, nb.memory() off,
// or the library failed its health check afterwards).
import * as ref from './ref.mjs';

export const SURFACES = ['safetensors', 'idx', 'checkpoint', 'ops', 'alloc'];

/** mulberry32: a small seeded generator (uniform in [0, 1)). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of one case: distinct for every (seed, surface, index). */
export function caseSeed(seed, surface, index) {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const c of `${surface}:${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
const pick = (r, list) => list[Math.floor(r() * list.length)];

// ------------------------------------------------------------------ mutation

const INTERESTING = [0, 1, -1, 255, 65535, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53];

/** Random byte-level damage: flips, overwrites, truncation, extension, splices. */
function mutateBytes(r, bytes) {
  let b = bytes.slice();
  const rounds = int(r, 1, 4);
  for (let k = 0; k < rounds; k++) {
    const kind = int(r, 0, 6);
    if (b.length === 0) b = new Uint8Array(int(r, 0, 16));
    const i = int(r, 0, b.length - 1);
    if (kind === 0) b[i] ^= 1 << int(r, 0, 7);
    else if (kind === 1) b[i] = int(r, 0, 255);
    else if (kind === 2) b = b.slice(0, int(r, 0, b.length));
    else if (kind === 3) {
      const extra = new Uint8Array(int(r, 1, 64)).map(() => int(r, 0, 255));
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      b = out;
    } else if (kind === 4) {
      const v = pick(r, INTERESTING);
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (i + 4 <= b.length) dv.setUint32(i, v >>> 0, r() < 0.5);
    } else if (kind === 5) {
      const j = int(r, 0, b.length - 1);
      b = Uint8Array.from([...b.subarray(0, Math.min(i, j)), ...b.subarray(Math.max(i, j))]);
    } else {
      const j = int(r, 0, b.length - 1);
      b.copyWithin(i, j, Math.min(b.length, j + int(r, 1, 16)));
    }
  }
  return b;
}

/** Structured damage to a JSON value: numbers become extreme, types change, keys vanish. */
function mutateJson(r, v, depth = 0) {
  if (Array.isArray(v)) {
    const a = v.map((x) => (r() < 0.3 ? mutateJson(r, x, depth + 1) : x));
    if (r() < 0.15) a.push(pick(r, INTERESTING));
    if (r() < 0.1) a.pop();
    if (r() < 0.05) return new Array(int(r, 65, 300)).fill(1);
    return a;
  }
  if (v !== null && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) {
      if (r() < 0.08) continue;
      o[r() < 0.04 ? `${k}x` : k] = r() < 0.35 ? mutateJson(r, x, depth + 1) : x;
    }
    return o;
  }
  const kind = int(r, 0, 6);
  if (kind === 0) return pick(r, INTERESTING);
  if (kind === 1) return -pick(r, INTERESTING);
  if (kind === 2) return null;
  if (kind === 3) return String(v);
  if (kind === 4) return typeof v === 'number' ? v + pick(r, [1, -1, 4, 0.5]) : v;
  if (kind === 5) return [v];
  return depth > 0 ? { v } : v;
}

function safetensorsBytes(header, data) {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const json = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function splitSafetensors(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  return { header, data: bytes.subarray(8 + n) };
}

/** `loadSafetensors` returns { tensors, metadata } or (newer API) the state dict itself. */
function stateDictOf(nb, loaded) {
  if (loaded && loaded.tensors && !(loaded.tensors instanceof nb.Tensor) && 'metadata' in loaded)
    return loaded.tensors;
  return loaded;
}

// ------------------------------------------------------------------ surfaces

/** Random float32-representable data in [-3, 3]. */
const values = (r, n) => Float64Array.from({ length: n }, () => Math.fround((r() - 0.5) * 6));

function randomShape(r, maxRank = 4, maxSize = 5) {
  return Array.from({ length: int(r, 0, maxRank) }, () => (r() < 0.08 ? 0 : int(r, 1, maxSize)));
}

/** A valid safetensors file from a seeded set of F32/I32/F16/I64 tensors, then damage. */
function safetensorsCase(nb, r, ctx) {
  const header = {};
  const chunks = [];
  let off = 0;
  for (let k = 0; k < int(r, 1, 3); k++) {
    const shape = randomShape(r, 3, 4);
    const dtype = pick(r, ['F32', 'I32', 'F16', 'I64', 'U8']);
    const n = ref.numel(shape);
    const size = { F32: 4, I32: 4, F16: 2, I64: 8, U8: 1 }[dtype];
    const buf = new Uint8Array(n * size);
    const dv = new DataView(buf.buffer);
    for (let i = 0; i < n; i++) {
      if (dtype === 'F32') dv.setFloat32(i * 4, (r() - 0.5) * 10, true);
      else if (dtype === 'I32') dv.setInt32(i * 4, int(r, -1000, 1000), true);
      else if (dtype === 'F16') dv.setUint16(i * 2, int(r, 0, 0x7bff), true);
      else if (dtype === 'I64') dv.setBigInt64(i * 8, BigInt(int(r, -1000, 1000)), true);
      else buf[i] = int(r, 0, 255);
    }
    header[`t${k}`] = { dtype, shape, data_offsets: [off, off + buf.length] };
    chunks.push(buf);
    off += buf.length;
  }
  if (r() < 0.5) header.__metadata__ = { format: 'pt', note: 'x'.repeat(int(r, 0, 20)) };
  const data = new Uint8Array(off);
  let at = 0;
  for (const c of chunks) data.set(c, (at += c.length) - c.length);
  const mutation = int(r, 0, 3);
  let bytes;
  if (mutation === 0) bytes = mutateBytes(r, safetensorsBytes(header, data));
  else if (mutation === 1) bytes = safetensorsBytes(mutateJson(r, header), data);
  else if (mutation === 2) {
    // nesting and rank bombs, written as text (building them as objects would recurse)
    const deep = int(r, 4, 5000);
    const bomb = r() < 0.5 ? '['.repeat(deep) + ']'.repeat(deep) : `[${new Array(deep).fill(1)}]`;
    const text = JSON.stringify(header).replace(/"shape":\[[^\]]*\]/, `"shape":${bomb}`);
    bytes = safetensorsBytes(text, data);
  } else bytes = safetensorsBytes(header, data); // the valid file itself
  const loaded = stateDictOf(nb, nb.io.loadSafetensors(bytes));
  ctx.owned.push(...Object.values(loaded));
  // Accepted: it must be exactly what a reference reading of the (possibly damaged) bytes says.
  let parsed;
  try {
    parsed = splitSafetensors(bytes);
  } catch {
    return 'garbage'; // nabla accepted a file whose header is not even JSON
  }
  const names = Object.keys(parsed.header).filter((k) => k !== '__metadata__');
  if (names.sort().join() !== Object.keys(loaded).sort().join()) return 'garbage';
  for (const [name, t] of Object.entries(loaded)) {
    const e = parsed.header[name];
    if (!e || JSON.stringify(e.shape) !== JSON.stringify(t.shape)) return 'garbage';
    const [b] = e.data_offsets;
    const dv = new DataView(parsed.data.buffer, parsed.data.byteOffset + b);
    const got = t.toArray();
    for (let i = 0; i < got.length; i++) {
      let want;
      if (e.dtype === 'F32') want = dv.getFloat32(i * 4, true);
      else if (e.dtype === 'I32') want = dv.getInt32(i * 4, true);
      else if (e.dtype === 'I64') want = Number(dv.getBigInt64(i * 8, true));
      else if (e.dtype === 'U8') want = dv.getUint8(i);
      else continue; // F16 decoding is covered by the safetensors tests
      if (!Object.is(got[i], want) && !(Number.isNaN(got[i]) && Number.isNaN(want)))
        return 'garbage';
    }
  }
  return 'ok';
}

const IDX_TYPES = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };

function idxCase(nb, r, ctx) {
  const code = pick(r, [0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e]);
  const shape = randomShape(r, 3, 6);
  const n = ref.numel(shape);
  const size = IDX_TYPES[code];
  let bytes = new Uint8Array(4 + 4 * shape.length + n * size);
  const dv = new DataView(bytes.buffer);
  bytes.set([0, 0, code, shape.length]);
  shape.forEach((s, d) => dv.setUint32(4 + 4 * d, s));
  for (let i = 0, p = 4 + 4 * shape.length; i < n; i++, p += size) {
    if (code === 0x0d) dv.setFloat32(p, (r() - 0.5) * 100);
    else if (code === 0x0e) dv.setFloat64(p, (r() - 0.5) * 100);
    else for (let k = 0; k < size; k++) bytes[p + k] = int(r, 0, 255);
  }
  if (r() < 0.85) bytes = mutateBytes(r, bytes);
  const t = nb.data.readIdx(bytes);
  ctx.owned.push(t);
  // Accepted: decode it independently.
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const nd = bytes[3];
  const dims = Array.from({ length: nd }, (_, d) => v.getUint32(4 + 4 * d));
  if (JSON.stringify(dims) !== JSON.stringify(t.shape)) return 'garbage';
  const got = t.toArray();
  const read = {
    0x08: (p) => v.getUint8(p),
    0x09: (p) => v.getInt8(p),
    0x0b: (p) => v.getInt16(p),
    0x0c: (p) => v.getInt32(p),
    0x0d: (p) => v.getFloat32(p),
    0x0e: (p) => Math.fround(v.getFloat64(p)),
  }[bytes[2]];
  const sz = IDX_TYPES[bytes[2]];
  for (let i = 0, p = 4 + 4 * nd; i < got.length; i++, p += sz) {
    const want = read(p);
    if (!Object.is(got[i], want) && !(Number.isNaN(got[i]) && Number.isNaN(want))) return 'garbage';
  }
  return 'ok';
}

function checkpointParts(nb, seed) {
  nb.manualSeed(seed);
  const model = new nb.nn.Sequential(
    new nb.nn.Linear(3, 4),
    new nb.nn.ReLU(),
    new nb.nn.Linear(4, 2),
  );
  const optimizer = new nb.optim.Adam(model.parameters(), { lr: 0.05 });
  const scheduler = new nb.optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
  return { model, optimizer, scheduler };
}

/** Everything a checkpoint load can change, as plain data. */
function partsState(nb, p) {
  const sd = p.optimizer.stateDict();
  const moments = [];
  for (const e of Object.values(sd.state))
    for (const v of Object.values(e)) {
      if (v instanceof nb.Tensor) {
        moments.push(Array.from(v.toArray()));
        v.dispose();
      } else moments.push(v);
    }
  return JSON.stringify({
    params: p.model.parameters().map((t) => Array.from(t.toArray())),
    moments,
    groups: p.optimizer.paramGroups.map(({ params, ...o }) => (void params, o)),
    sched: p.scheduler.stateDict(),
    rng: nb.getRngState(),
  });
}

function checkpointCase(nb, r, ctx) {
  const src = checkpointParts(nb, int(r, 0, 1000));
  ctx.disposers.push(() => disposeParts(src));
  const x = nb.randn([5, 3]);
  ctx.owned.push(x);
  for (let s = 0; s < int(r, 0, 2); s++) {
    src.optimizer.zeroGrad();
    const y = src.model.forward(x);
    const loss = y.sum();
    loss.backward();
    src.optimizer.step();
    src.scheduler.step();
    [y, loss].forEach((t) => t.dispose());
  }
  let bytes = nb.train.saveCheckpoint(src, { epoch: int(r, 0, 9) });
  const kind = int(r, 0, 2);
  if (kind === 0) bytes = mutateBytes(r, bytes);
  else if (kind === 1) {
    const { header, data } = splitSafetensors(bytes);
    const meta = JSON.parse(header.__metadata__['nabla.checkpoint']);
    header.__metadata__['nabla.checkpoint'] = JSON.stringify(mutateJson(r, meta));
    bytes = safetensorsBytes(header, data);
  }
  const dst = checkpointParts(nb, 4242);
  ctx.disposers.push(() => disposeParts(dst));
  nb.manualSeed(int(r, 0, 99));
  const before = partsState(nb, dst);
  try {
    nb.train.loadCheckpoint(bytes, dst);
  } catch (e) {
    // a refused checkpoint must leave every part as it was
    if (partsState(nb, dst) !== before) ctx.corrupted = 'a failed loadCheckpoint changed its parts';
    throw e;
  }
  // accepted: the generator still moves (a frozen counter repeats draws)
  const a = nb.rand([4]);
  const b = nb.rand([4]);
  ctx.owned.push(a, b);
  if (a.toArray().every((v, i) => v === b.toArray()[i])) return 'garbage';
  return 'ok';
}

function disposeParts(p) {
  p.optimizer.dispose();
  p.model.dispose();
}

// ---- ops: random calls checked against the float64 reference

function tensorOf(nb, r, shape, ctx) {
  const data = values(r, ref.numel(shape));
  const t = nb.tensor(Float32Array.from(data), { shape });
  ctx.owned.push(t);
  return { t, ref: { shape, data } };
}

const randDim = (r, ndim) =>
  r() < 0.1 ? int(r, -6, 6) : int(r, -Math.max(ndim, 1), Math.max(ndim, 1) - 1);

/** A shape broadcast-compatible with `s` most of the time. */
function partner(r, s) {
  if (r() < 0.15) return randomShape(r);
  const keep = s.slice(int(r, 0, s.length));
  return keep.map((v) => (r() < 0.3 ? 1 : v));
}

function opsCase(nb, r, ctx) {
  const shape = randomShape(r);
  const a = tensorOf(nb, r, shape, ctx);
  const form = int(r, 0, 21);
  let call;
  let want;
  const tryRef = (f) => {
    try {
      return f();
    } catch (e) {
      if (e instanceof ref.Invalid) return null;
      throw e;
    }
  };
  if (form === 0) {
    const op = pick(r, Object.keys(ref.UNARY));
    call = () => a.t[op]();
    want = tryRef(() => ref.unary(op, a.ref));
  } else if (form === 1) {
    const op = pick(r, Object.keys(ref.BINARY));
    const b = tensorOf(nb, r, partner(r, shape), ctx);
    if (r() < 0.3) {
      // int32 operands: exact integer results, int32 out
      for (const o of [a, b]) {
        o.ref.data = o.ref.data.map((v) => Math.round(v * 3));
        const it = nb.tensor(Int32Array.from(o.ref.data), {
          shape: o.ref.shape,
        });
        ctx.owned.push(it);
        o.t = it;
      }
      ctx.dtype = 'int32';
    }
    const [x, y] = r() < 0.5 ? [a, b] : [b, a];
    call = () => x.t[op](y.t);
    want = tryRef(() => ref.binary(op, x.ref, y.ref));
  } else if (form === 2) {
    const op = pick(r, ['sum', 'mean', 'max', 'min', 'logsumexp']);
    const nd = shape.length;
    let dim = op === 'logsumexp' || r() < 0.7 ? randDim(r, nd) : undefined;
    if (dim !== undefined && r() < 0.2 && nd > 1) dim = [randDim(r, nd), randDim(r, nd)];
    const keepdim = r() < 0.5;
    call = () => a.t[op](dim, keepdim);
    want = tryRef(() => ref.reduce(op, a.ref, dim, keepdim));
  } else if (form === 3) {
    const perm = [...Array(shape.length).keys()].sort(() => r() - 0.5);
    if (r() < 0.15) perm.push(int(r, -2, 4));
    call = () => a.t.permute(perm);
    want = tryRef(() => ref.permute(a.ref, perm));
  } else if (form === 4) {
    const [d0, d1] = [randDim(r, shape.length), randDim(r, shape.length)];
    call = () => a.t.transpose(d0, d1);
    want = tryRef(() => ref.transpose(a.ref, d0, d1));
  } else if (form === 5) {
    const dim = randDim(r, shape.length);
    const start = r() < 0.2 ? null : int(r, -7, 7);
    const end = r() < 0.2 ? null : int(r, -7, 7);
    const step = r() < 0.1 ? int(r, -1, 0) : int(r, 1, 3);
    call = () => a.t.slice(dim, start, end, step);
    want = tryRef(() => ref.slice(a.ref, dim, start, end, step));
  } else if (form === 6) {
    const others = [a];
    for (let k = 0; k < int(r, 0, 2); k++) {
      const s = [...shape];
      const d = shape.length ? int(r, 0, shape.length - 1) : 0;
      if (shape.length && r() < 0.85) s[d] = int(r, 0, 4);
      others.push(tensorOf(nb, r, r() < 0.1 ? randomShape(r) : s, ctx));
    }
    const dim = randDim(r, shape.length);
    call = () =>
      nb.cat(
        others.map((o) => o.t),
        dim,
      );
    want = tryRef(() =>
      ref.cat(
        others.map((o) => o.ref),
        dim,
      ),
    );
  } else if (form === 7) {
    const target = r() < 0.3 ? randomShape(r) : [...shape].reverse();
    if (target.length && r() < 0.4) target[int(r, 0, target.length - 1)] = -1;
    call = () => a.t.reshape(target);
    want = tryRef(() => ref.reshape(a.ref, target));
  } else if (form === 8) {
    const m = int(r, 0, 5);
    const k = int(r, 0, 5);
    const n = int(r, 0, 5);
    const x = tensorOf(nb, r, [m, k], ctx); // 2-d forms: the reference has no batching
    const y = tensorOf(nb, r, r() < 0.1 ? [k + 1, n] : [k, n], ctx);
    call = () => x.t.matmul(y.t);
    want = tryRef(() => ref.matmul(x.ref, y.ref));
  } else if (form === 9) {
    const dim = randDim(r, shape.length);
    call = () => a.t.softmax(dim);
    want = tryRef(() => ref.softmax(a.ref, dim));
  } else if (form === 10) {
    const src = shape.length ? a : tensorOf(nb, r, [3], ctx);
    const dim = randDim(r, src.ref.shape.length);
    const nd = src.ref.shape.length;
    const size = src.ref.shape[((dim % nd) + nd) % nd] ?? 1;
    const index = Array.from({ length: int(r, 0, 4) }, () =>
      r() < 0.15
        ? pick(r, [size, -size - 1, 2 ** 31 - 1, -(2 ** 31)])
        : int(r, 0, Math.max(size - 1, 0)),
    );
    const it = nb.tensor(Int32Array.from(index), { shape: [index.length] });
    ctx.owned.push(it);
    call = () => src.t.indexSelect(dim, it);
    // PyTorch's index_select takes no negative indices: they are out of range.
    want = tryRef(() => {
      if (index.some((i) => i < 0)) throw new ref.Invalid('negative index');
      return ref.indexSelect(src.ref, dim, index);
    });
  } else if (form === 12) {
    const op = pick(r, Object.keys(ref.COMPARE));
    const b = tensorOf(nb, r, partner(r, shape), ctx);
    if (r() < 0.5) b.t.copy_(a.t.sum()); // some equal values
    b.ref.data = Float64Array.from(b.t.toArray());
    call = () => a.t[op](b.t);
    want = tryRef(() => ref.compare(op, a.ref, b.ref));
    ctx.dtype = 'int32';
  } else if (form === 13) {
    const lo = r() < 0.3 ? null : (r() - 0.5) * 4;
    const hi = r() < 0.3 ? null : (r() - 0.5) * 4;
    call = () => a.t.clamp(lo, hi);
    want = tryRef(() =>
      ref.clamp(a.ref, lo == null ? null : Math.fround(lo), hi == null ? null : Math.fround(hi)),
    );
  } else if (form === 14) {
    const op = pick(r, ['argmax', 'argmin']);
    const dim = r() < 0.3 ? undefined : randDim(r, shape.length);
    const keepdim = dim !== undefined && r() < 0.5;
    call = () => a.t[op](dim, keepdim);
    want = tryRef(() => ref.argReduce(op, a.ref, dim, keepdim));
    ctx.dtype = 'int32';
  } else if (form === 15) {
    const dim = randDim(r, shape.length);
    call = () => a.t.logSoftmax(dim);
    want = tryRef(() => ref.logSoftmax(a.ref, dim));
  } else if (form === 16) {
    const dim = r() < 0.8 ? randDim(r, shape.length) : undefined;
    const keepdim = r() < 0.5;
    call = () => a.t.var(dim, keepdim);
    want = tryRef(() => ref.variance(a.ref, dim, keepdim));
  } else if (form === 17) {
    const dim = randDim(r, shape.length + 1);
    call = () => a.t.unsqueeze(dim);
    want = tryRef(() => ref.unsqueeze(a.ref, dim));
  } else if (form === 18) {
    const dim = r() < 0.3 ? undefined : randDim(r, shape.length);
    call = () => a.t.squeeze(dim);
    want = tryRef(() => ref.squeeze(a.ref, dim));
  } else if (form === 19) {
    const [s0, s1] = [randDim(r, shape.length), randDim(r, shape.length)];
    call = () => a.t.flatten(s0, s1);
    want = tryRef(() => ref.flatten(a.ref, s0, s1));
  } else if (form === 20) {
    const target = [
      ...(r() < 0.5 ? [int(r, 0, 3)] : []),
      ...shape.map((s) => (s === 1 ? int(r, 0, 3) : r() < 0.2 ? -1 : r() < 0.1 ? s + 1 : s)),
    ];
    call = () => a.t.expand(target);
    want = tryRef(() => ref.expand(a.ref, target));
  } else if (form === 21) {
    const parts = [a];
    for (let k = 0; k < int(r, 0, 2); k++)
      parts.push(tensorOf(nb, r, r() < 0.15 ? randomShape(r) : shape, ctx));
    const dim = randDim(r, shape.length + 1);
    call = () =>
      nb.stack(
        parts.map((p) => p.t),
        dim,
      );
    want = tryRef(() =>
      ref.stack(
        parts.map((p) => p.ref),
        dim,
      ),
    );
  } else {
    const dim = randDim(r, shape.length);
    const start = int(r, -6, 6);
    const length = int(r, -1, 6);
    call = () => a.t.narrow(dim, start, length);
    want = tryRef(() => {
      if (shape.length === 0) throw new ref.Invalid('0-d');
      const d = dim < 0 ? dim + shape.length : dim;
      const n = shape[d];
      const s = start < 0 ? start + n : start;
      if (d < 0 || d >= shape.length || s < 0 || length < 0 || s + length > n)
        throw new ref.Invalid('narrow');
      return ref.slice(a.ref, d, s, s + length, 1);
    });
  }
  ctx.why = `${String(call).replace(/\s+/g, ' ').slice(6)} on shapes ${ctx.owned.map((t) => JSON.stringify(t.shape)).join(' ')}; reference ${want ? JSON.stringify(want.shape) : 'invalid'}`;
  const inputs = ctx.owned.map((t) => Array.from(t.toArray()));
  let out;
  try {
    out = call();
  } finally {
    // an op, failed or not, never writes its inputs
    if (ctx.owned.some((t, i) => !sameValues(t.toArray(), inputs[i])))
      ctx.corrupted = 'an op changed its input';
  }
  ctx.owned.push(out);
  if (want === null) return 'garbage'; // accepted an invalid call
  if (JSON.stringify(out.shape) !== JSON.stringify(want.shape)) return 'garbage';
  if (out.dtype !== (ctx.dtype ?? 'float32')) return 'garbage';
  const got = out.toArray();
  for (let i = 0; i < got.length; i++) {
    const w = want.data[i];
    if (
      Number.isNaN(w) ? !Number.isNaN(got[i]) : !(Math.abs(got[i] - w) <= 1e-4 + 1e-4 * Math.abs(w))
    )
      return 'garbage';
  }
  return 'ok';
}

function sameValues(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

// ---- alloc: storms of allocations near the limit

/**
 * Requests of untouched memory (no fill): ballast that brings the heap near 4 GiB without
 * making the OS provide GiBs of pages, which costs tens of seconds on a loaded machine.
 */
function emptyTensor(nb, n) {
  return nb.Tensor.empty([n]);
}

function allocCase(nb, r, ctx, opts) {
  const live = [];
  let outcome = 'ok';
  const attempt = (make) => {
    try {
      const t = make();
      ctx.owned.push(t);
      return t;
    } catch (e) {
      if (!(e instanceof nb.OutOfMemoryError)) throw e;
      outcome = 'typed';
      return null;
    }
  };
  if (r() < 0.6)
    attempt(() => emptyTensor(nb, Math.floor((pick(r, [1, 2, 2.5, 3, 3.5, 3.99]) * 2 ** 30) / 4)));
  for (let k = 0; k < int(r, 1, 8); k++) {
    const kind = int(r, 0, 9);
    if (kind < 6) {
      const n = Math.floor(int(r, 0, opts.maxAllocBytes) / 4);
      const shape = r() < 0.5 ? [n] : [Math.max(1, Math.floor(n / 64)), n >= 64 ? 64 : 0];
      const value = int(r, -100, 100);
      const t = attempt(() => nb.full(shape, value));
      if (t) live.push({ t, value });
    } else if (kind < 8) {
      // past the limit or within 64 KiB of it: must be refused, never wrapped
      const bytes = pick(r, [2 ** 32, 2 ** 32 - 64, 2 ** 32 + 8000, 2 ** 40, 2 ** 33 + 4]);
      attempt(() => nb.full([Math.floor(bytes / 4)], 7));
    } else {
      // about what is left: succeeds or is refused, depending on fragmentation
      const room = 2 ** 32 - nb.memory().bytes;
      attempt(() => emptyTensor(nb, Math.max(0, Math.floor((room - int(r, 0, 2 ** 28)) / 4))));
    }
    // every live tensor still holds its value (spot checks at both ends)
    for (const { t, value: v } of live) {
      if (t.size === 0) continue;
      const first = t.narrow(0, 0, 1);
      const lastRow = t.narrow(0, t.shape[0] - 1, 1);
      ctx.owned.push(first, lastRow);
      if (first.toArray()[0] !== v || lastRow.toArray().at(-1) !== v)
        ctx.corrupted = 'an allocation changed a live tensor';
    }
    // and the library still computes after a refusal
    if (outcome === 'typed' && !healthy(nb))
      ctx.corrupted = 'no op works after an OutOfMemoryError';
    if (r() < 0.4 && live.length) live.splice(int(r, 0, live.length - 1), 1)[0].t.dispose();
  }
  if (r() < 0.2) nb.emptyCache();
  return outcome;
}

const CASES = {
  safetensors: safetensorsCase,
  idx: idxCase,
  checkpoint: checkpointCase,
  ops: opsCase,
  alloc: allocCase,
};

// ------------------------------------------------------------------ one case, classified

export function classify(nb, e) {
  if (e instanceof nb.NablaError) return 'typed';
  if (e instanceof WebAssembly.RuntimeError) return 'trap';
  return 'generic';
}

/** The library works: a broadcast op, a reduction and a matmul give exact answers. */
export function healthy(nb) {
  return nb.tidy(() => {
    const a = nb.ones([2, 3]).add(nb.arange(3));
    const s = a.sum().item();
    const m = nb
      .ones([2, 2])
      .matmul(nb.full([2, 2], 2))
      .toArray();
    return s === 12 && m.every((v) => v === 4);
  });
}

/**
 * Runs case `index` of `surface` with sentinel tensors alive, and returns its outcome and a
 * short detail. Afterwards every tensor the case made is disposed and nb.memory() must be back
 * to exactly what it was.
 */
export function runCase(nb, seed, surface, index, opts = {}) {
  const o = { maxAllocBytes: 8 * 2 ** 20, ...opts };
  const r = rng(caseSeed(seed, surface, index));
  const sentinels = [nb.full([257], 1.5), nb.arange(31)];
  const sentinelValues = sentinels.map((t) => Array.from(t.toArray()));
  const base = nb.memory();
  const ctx = {
    owned: [],
    disposers: [],
    corrupted: null,
    why: null,
    dtype: null,
  };
  let outcome;
  let detail = '';
  try {
    // in a scope, as user code would be: intermediates go when it ends; kept tensors do not
    outcome = nb.tidy(() => CASES[surface](nb, r, ctx, o));
  } catch (e) {
    outcome = classify(nb, e);
    detail = `${e?.name}: ${String(e?.message).slice(0, 160)}`;
  }
  if (outcome === 'garbage') detail = ctx.why ?? 'result disagrees with the reference';
  for (const t of ctx.owned) t?.dispose?.();
  for (const d of ctx.disposers) d();
  const m = nb.memory();
  if (m.tensors !== base.tensors || m.bytes !== base.bytes) {
    ctx.corrupted ??= `nb.memory() drifted: ${base.tensors}/${base.bytes} -> ${m.tensors}/${m.bytes}`;
  }
  if (sentinels.some((t, i) => !sameValues(t.toArray(), sentinelValues[i])))
    ctx.corrupted ??= 'a sentinel tensor changed';
  sentinels.forEach((t) => t.dispose());
  if (outcome !== 'ok') {
    let ok = false;
    try {
      ok = healthy(nb);
    } catch {
      ok = false;
    }
    if (!ok) ctx.corrupted ??= 'the health check failed';
  }
  if (ctx.corrupted) {
    detail = `${ctx.corrupted}${detail ? ` (after ${detail})` : ''}`;
    outcome = 'corrupted';
  }
  return { outcome, detail };
}

export const COLUMNS = ['typed', 'generic', 'trap', 'hang', 'garbage', 'corrupted'];

export function emptyCounts() {
  return Object.fromEntries(
    SURFACES.map((s) => [
      s,
      { cases: 0, ok: 0, ...Object.fromEntries(COLUMNS.map((c) => [c, 0])) },
    ]),
  );
}

/** The report table: surface | cases | typed errors | generic errors | traps | hangs | ... */
export function table(counts) {
  const head =
    '| surface | cases | typed errors | generic errors | traps | hangs | silent garbage | corrupted state |';
  const rows = Object.entries(counts).map(
    ([s, c]) =>
      `| ${s} | ${c.cases} | ${c.typed} | ${c.generic} | ${c.trap} | ${c.hang} | ${c.garbage} | ${c.corrupted} |`,
  );
  return [head, '| --- | --- | --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}
