// A float64 reference for the op forms the fuzzer calls: plain JavaScript over
// { shape, data } with PyTorch's validity rules. An invalid call throws `Invalid`, so the
// fuzzer knows nabla must reject it (with a typed error) rather than return something.

export class Invalid extends Error {}

const bad = (msg) => {
  throw new Invalid(msg);
};

export const numel = (shape) => shape.reduce((a, b) => a * b, 1);

export function strides(shape) {
  const out = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = acc;
    acc *= shape[d];
  }
  return out;
}

/** Index tuple of flat position `i` in `shape`. */
function unravel(i, shape) {
  const idx = new Array(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return idx;
}

function normDim(dim, ndim) {
  const n = Math.max(ndim, 1);
  if (!Number.isInteger(dim) || dim < -n || dim >= n) bad(`dim ${dim}`);
  return dim < 0 ? dim + n : dim;
}

function normDims(dims, ndim) {
  if (dims === undefined) return [...Array(ndim).keys()];
  const list = (typeof dims === 'number' ? [dims] : dims).map((d) => normDim(d, ndim));
  if (new Set(list).size !== list.length) bad('repeated dim');
  return list.filter((d) => d < ndim).sort((a, b) => a - b);
}

export function broadcast(a, b) {
  const nd = Math.max(a.length, b.length);
  const out = [];
  for (let i = 0; i < nd; i++) {
    const x = a[a.length - nd + i] ?? 1;
    const y = b[b.length - nd + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) bad('broadcast');
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** Reads `t` at an index of a (possibly broadcast, longer) shape. */
function at(t, idx) {
  const off = idx.length - t.shape.length;
  const st = strides(t.shape);
  let p = 0;
  for (let d = 0; d < t.shape.length; d++) p += (t.shape[d] === 1 ? 0 : idx[d + off]) * st[d];
  return t.data[p];
}

export const UNARY = {
  neg: (x) => -x,
  exp: Math.exp,
  abs: Math.abs,
  relu: (x) => (x > 0 ? x : 0),
  sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  tanh: Math.tanh,
  square: (x) => x * x,
};

export const BINARY = {
  add: (x, y) => x + y,
  sub: (x, y) => x - y,
  mul: (x, y) => x * y,
  maximum: (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.max(x, y)),
  minimum: (x, y) => (Number.isNaN(x) || Number.isNaN(y) ? NaN : Math.min(x, y)),
};

export function unary(op, t) {
  return { shape: t.shape, data: t.data.map(UNARY[op]) };
}

export function binary(op, a, b) {
  const shape = broadcast(a.shape, b.shape);
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = BINARY[op](at(a, idx), at(b, idx));
  }
  return { shape, data };
}

export function reduce(op, t, dim, keepdim) {
  const dims = normDims(dim, t.shape.length);
  if ((op === 'max' || op === 'min') && dims.some((d) => t.shape[d] === 0)) bad('empty max');
  if (
    (op === 'max' || op === 'min' || op === 'logsumexp') &&
    dim === undefined &&
    numel(t.shape) === 0
  )
    bad('empty');
  const keptShape = t.shape.map((s, d) => (dims.includes(d) ? 1 : s));
  const groups = new Map();
  for (let i = 0; i < t.data.length; i++) {
    const idx = unravel(i, t.shape).map((v, d) => (dims.includes(d) ? 0 : v));
    const key = idx.join(',');
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(t.data[i]);
  }
  const n = numel(keptShape);
  const data = new Float64Array(n);
  const ks = strides(keptShape);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, keptShape);
    const vals = groups.get(idx.join(',')) ?? [];
    void ks;
    if (op === 'sum') data[i] = vals.reduce((a, b) => a + b, 0);
    else if (op === 'mean') data[i] = vals.reduce((a, b) => a + b, 0) / vals.length;
    else if (op === 'max') data[i] = Math.max(...vals);
    else if (op === 'min') data[i] = Math.min(...vals);
    else if (op === 'logsumexp') {
      const m = Math.max(...vals);
      data[i] =
        vals.length === 0 ? -Infinity : m + Math.log(vals.reduce((a, v) => a + Math.exp(v - m), 0));
    }
  }
  const shape = keepdim ? keptShape : t.shape.filter((_, d) => !dims.includes(d));
  return { shape, data };
}

export function permute(t, perm) {
  const p = perm.map((d) => normDim(d, t.shape.length));
  if (p.length !== t.shape.length || new Set(p).size !== p.length) bad('permute');
  const shape = p.map((d) => t.shape[d]);
  const data = new Float64Array(t.data.length);
  const st = strides(t.shape);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    let q = 0;
    idx.forEach((v, k) => (q += v * st[p[k]]));
    data[i] = t.data[q];
  }
  return { shape, data };
}

export function transpose(t, a, b) {
  const n = t.shape.length;
  const x = normDim(a, n);
  const y = normDim(b, n);
  if (n === 0) return t;
  const perm = [...Array(n).keys()];
  [perm[x], perm[y]] = [perm[y], perm[x]];
  return permute(t, perm);
}

export function slice(t, dim, start, end, step) {
  if (t.shape.length === 0) bad('slice 0-d');
  const d = normDim(dim, t.shape.length);
  if (!Number.isInteger(step) || step <= 0) bad('step');
  const n = t.shape[d];
  const clamp = (v, dflt) => (v == null ? dflt : Math.min(Math.max(v < 0 ? v + n : v, 0), n));
  const lo = clamp(start, 0);
  const hi = Math.max(clamp(end, n), lo);
  const picks = [];
  for (let i = lo; i < hi; i += step) picks.push(i);
  return take(t, d, picks);
}

function take(t, d, picks) {
  const shape = [...t.shape];
  shape[d] = picks.length;
  const data = new Float64Array(numel(shape));
  const st = strides(t.shape);
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    idx[d] = picks[idx[d]];
    data[i] = t.data[idx.reduce((a, v, k) => a + v * st[k], 0)];
  }
  return { shape, data };
}

export function indexSelect(t, dim, index) {
  const d = normDim(dim, t.shape.length);
  const n = t.shape.length === 0 ? 1 : t.shape[d];
  if (index.some((i) => i < -n || i >= n)) bad('index');
  if (t.shape.length === 0) return { shape: [], data: t.data.slice() };
  return take(
    t,
    d,
    index.map((i) => (i < 0 ? i + n : i)),
  );
}

export function cat(ts, dim) {
  if (ts.length === 0 || ts.some((t) => t.shape.length === 0)) bad('cat');
  const nd = ts[0].shape.length;
  const d = normDim(dim, nd);
  for (const t of ts)
    if (t.shape.length !== nd || t.shape.some((s, i) => i !== d && s !== ts[0].shape[i]))
      bad('cat shapes');
  const shape = [...ts[0].shape];
  shape[d] = ts.reduce((a, t) => a + t.shape[d], 0);
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    let k = 0;
    while (idx[d] >= ts[k].shape[d]) idx[d] -= ts[k++].shape[d];
    data[i] = ts[k].data[idx.reduce((a, v, j) => a + v * strides(ts[k].shape)[j], 0)];
  }
  return { shape, data };
}

export function reshape(t, target) {
  const total = t.data.length;
  if (
    target.filter((s) => s === -1).length > 1 ||
    target.some((s) => !Number.isInteger(s) || s < -1)
  )
    bad('reshape');
  const known = target.reduce((p, s) => (s === -1 ? p : p * s), 1);
  const shape = target.map((s) => (s === -1 ? (known === 0 ? 0 : total / known) : s));
  if (numel(shape) !== total || shape.some((s) => !Number.isInteger(s))) bad('reshape size');
  return { shape, data: t.data.slice() };
}

export function matmul(a, b) {
  if (a.shape.length !== 2 || b.shape.length !== 2 || a.shape[1] !== b.shape[0]) bad('matmul');
  const [m, k] = a.shape;
  const n = b.shape[1];
  const data = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) s += a.data[i * k + l] * b.data[l * n + j];
      data[i * n + j] = s;
    }
  return { shape: [m, n], data };
}

export function softmax(t, dim) {
  const d = normDim(dim, t.shape.length);
  if (t.shape.length === 0) return { shape: [], data: Float64Array.of(1) };
  const lse = reduce('logsumexp', t, d, true);
  const data = t.data.map((v, i) => {
    const idx = unravel(i, t.shape);
    idx[d] = 0;
    return Math.exp(v - at(lse, idx));
  });
  return { shape: t.shape, data };
}

export const COMPARE = {
  eq: (x, y) => +(x === y),
  ne: (x, y) => +(x !== y),
  lt: (x, y) => +(x < y),
  le: (x, y) => +(x <= y),
  gt: (x, y) => +(x > y),
  ge: (x, y) => +(x >= y),
};

export function compare(op, a, b) {
  const shape = broadcast(a.shape, b.shape);
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = COMPARE[op](at(a, idx), at(b, idx));
  }
  return { shape, data };
}

export function clamp(t, lo, hi) {
  return {
    shape: t.shape,
    data: t.data.map((v) => {
      let y = v;
      if (lo != null) y = Math.max(y, lo);
      if (hi != null) y = Math.min(y, hi);
      return y;
    }),
  };
}

export function argReduce(op, t, dim, keepdim) {
  if (t.data.length === 0) bad('empty arg');
  const better = op === 'argmax' ? (x, y) => x > y : (x, y) => x < y;
  if (dim === undefined) {
    let best = 0;
    for (let i = 1; i < t.data.length; i++) if (better(t.data[i], t.data[best])) best = i;
    return {
      shape: keepdim ? t.shape.map(() => 1) : [],
      data: Float64Array.of(best),
    };
  }
  const d = normDim(dim, t.shape.length);
  if (t.shape.length === 0) return { shape: [], data: Float64Array.of(0) };
  const keptShape = t.shape.map((s, k) => (k === d ? 1 : s));
  const n = numel(keptShape);
  const data = new Float64Array(n);
  const st = strides(t.shape);
  for (let i = 0; i < n; i++) {
    const idx = unravel(i, keptShape);
    let best = 0;
    const val = (j) => t.data[idx.reduce((a, v, k) => a + (k === d ? j : v) * st[k], 0)];
    for (let j = 1; j < t.shape[d]; j++) if (better(val(j), val(best))) best = j;
    data[i] = best;
  }
  return {
    shape: keepdim ? keptShape : t.shape.filter((_, k) => k !== d),
    data,
  };
}

export function logSoftmax(t, dim) {
  const s = softmax(t, dim);
  return { shape: s.shape, data: s.data.map(Math.log) };
}

export function variance(t, dim, keepdim) {
  const m = reduce('mean', t, dim, true);
  const dims = normDims(dim, t.shape.length);
  const n = dims.reduce((a, d) => a * t.shape[d], 1);
  const sq = {
    shape: t.shape,
    data: t.data.map((v, i) => (v - at(m, unravel(i, t.shape))) ** 2),
  };
  const s = reduce('sum', sq, dim, keepdim);
  return { shape: s.shape, data: s.data.map((v) => v / Math.max(n - 1, 0)) };
}

export function unsqueeze(t, dim) {
  const d = normDim(dim, t.shape.length + 1);
  const shape = [...t.shape];
  shape.splice(d, 0, 1);
  return { shape, data: t.data.slice() };
}

export function squeeze(t, dim) {
  const dims = normDims(dim, t.shape.length);
  return {
    shape: t.shape.filter((s, k) => !(s === 1 && dims.includes(k))),
    data: t.data.slice(),
  };
}

export function flatten(t, start, end) {
  if (t.shape.length === 0) {
    normDim(start, 0);
    normDim(end, 0);
    return { shape: [1], data: t.data.slice() };
  }
  const s = normDim(start, t.shape.length);
  const e = normDim(end, t.shape.length);
  if (s > e) bad('flatten order');
  const merged = t.shape.slice(s, e + 1).reduce((a, b) => a * b, 1);
  return {
    shape: [...t.shape.slice(0, s), merged, ...t.shape.slice(e + 1)],
    data: t.data.slice(),
  };
}

export function expand(t, target) {
  const off = target.length - t.shape.length;
  if (off < 0) bad('expand rank');
  const shape = target.map((s, i) => (s === -1 && i >= off ? t.shape[i - off] : s));
  shape.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 0) bad('expand size');
    if (i >= off && t.shape[i - off] !== s && t.shape[i - off] !== 1) bad('expand');
  });
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) data[i] = at(t, unravel(i, shape));
  return { shape, data };
}

export function stack(ts, dim) {
  if (ts.length === 0) bad('stack empty');
  if (ts.some((t) => JSON.stringify(t.shape) !== JSON.stringify(ts[0].shape))) bad('stack shapes');
  const d = normDim(dim, ts[0].shape.length + 1);
  return cat(
    ts.map((t) => unsqueeze(t, d)),
    d,
  );
}
