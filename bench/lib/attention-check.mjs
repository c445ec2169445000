// Checks for the attention workloads' timed work (see lib/attention.mjs):
// - SDPA: the last timed call's output and gradients against float64, on a few rows of the
//   first and the last head (run in the child, like lib/verify.mjs for GEMM);
// - the GPT step: the first timed update must be AdamW's first update (run in the parent).

/** Rows 0, T-1 and `count - 2` more spread between them. */
function pickRows(T, count) {
  const rows = new Set([0, T - 1]);
  for (let i = 1; rows.size < Math.min(count, T); i++) rows.add(Math.floor((i * T) / count) % T);
  return [...rows];
}

/**
 * Causal softmax(q kᵀ/√E) v and its gradients for upstream gradient g, in float64, for head
 * `head` of [B, H, T, E] arrays: returns the output, dq, dk and dv rows of `rows`.
 */
function referenceHead({ shape, q, k, v, g }, head, rows) {
  const [, , T, E] = shape;
  const base = head * T * E;
  const at = (a, i, e) => a[base + i * E + e];
  const scale = 1 / Math.sqrt(E);
  const P = new Float64Array(T * T); // weights, then dS in place
  const D = new Float64Array(T);
  const out = new Float64Array(T * E);
  for (let i = 0; i < T; i++) {
    let max = -Infinity;
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let e = 0; e < E; e++) s += at(q, i, e) * at(k, j, e);
      P[i * T + j] = s * scale;
      max = Math.max(max, s * scale);
    }
    let sum = 0;
    for (let j = 0; j <= i; j++) sum += P[i * T + j] = Math.exp(P[i * T + j] - max);
    for (let j = 0; j <= i; j++) {
      const p = (P[i * T + j] /= sum);
      for (let e = 0; e < E; e++) out[i * E + e] += p * at(v, j, e);
    }
    for (let e = 0; e < E; e++) D[i] += at(g, i, e) * out[i * E + e];
  }
  const dv = (j) => {
    const r = new Float64Array(E);
    for (let i = j; i < T; i++) for (let e = 0; e < E; e++) r[e] += P[i * T + j] * at(g, i, e);
    return r;
  };
  const dvRows = rows.map(dv);
  // dS = P ∘ (g vᵀ − D)
  for (let i = 0; i < T; i++) {
    for (let j = 0; j <= i; j++) {
      let dp = 0;
      for (let e = 0; e < E; e++) dp += at(g, i, e) * at(v, j, e);
      P[i * T + j] *= dp - D[i];
    }
  }
  const dq = (i) => {
    const r = new Float64Array(E);
    for (let j = 0; j <= i; j++)
      for (let e = 0; e < E; e++) r[e] += scale * P[i * T + j] * at(k, j, e);
    return r;
  };
  const dk = (j) => {
    const r = new Float64Array(E);
    for (let i = j; i < T; i++)
      for (let e = 0; e < E; e++) r[e] += scale * P[i * T + j] * at(q, i, e);
    return r;
  };
  return {
    o: rows.map((i) => out.subarray(i * E, (i + 1) * E)),
    dq: rows.map(dq),
    dk: rows.map(dk),
    dv: dvRows,
  };
}

/**
 * Throws unless `got` = [o, dq, dk, dv] (flat float arrays of `shape`) match float64 on
 * `rows` rows of the first and last head; also every gradient must have nonzero entries.
 */
export function checkSdpa({ shape, q, k, v, g, got, rows }) {
  const [B, H, T, E] = shape;
  const names = ['output', 'dq', 'dk', 'dv'];
  got.forEach((a, n) => {
    if (a.length !== B * H * T * E) {
      throw new Error(`sdpa: ${names[n]} has ${a.length} values, expected ${B * H * T * E}`);
    }
  });
  const picked = pickRows(T, rows);
  let maxErr = 0;
  let checked = 0;
  for (const head of new Set([0, B * H - 1])) {
    const ref = referenceHead({ shape, q, k, v, g }, head, picked);
    [ref.o, ref.dq, ref.dk, ref.dv].forEach((want, n) => {
      picked.forEach((row, r) => {
        for (let e = 0; e < E; e++) {
          const w = want[r][e];
          const x = got[n][(head * T + row) * E + e];
          const err = Math.abs(x - w);
          if (!(err <= 1e-4 + 1e-3 * Math.abs(w))) {
            throw new Error(
              `sdpa T ${T}: ${names[n]}[head ${head}, row ${row}, ${e}] = ${x}, float64 gives ${w.toFixed(7)}`,
            );
          }
          maxErr = Math.max(maxErr, err);
          checked++;
        }
      });
    });
  }
  for (let n = 1; n < 4; n++) {
    if (!got[n].some((x) => x !== 0)) throw new Error(`sdpa T ${T}: ${names[n]} is all zeros`);
  }
  return { checkedValues: checked, maxAbsError: maxErr, rows: picked };
}

/**
 * The first timed GPT step must be AdamW's first update: with m̂ = g and v̂ = g², every element
 * moves by −lr·wd·p − lr·g/(|g| + eps), so |Δ + lr·wd·p| ≤ lr, and equals lr (to 1% of lr) for
 * every element whose gradient is well above eps. Without a float64 GPT to recompute g, the
 * check asks that at least `minShare` of all elements move by exactly ±lr (a skipped backward,
 * a no-op or an SGD-sized update fails) and that the step lowered the first batch's loss.
 */
export function checkFirstAdamWStep({
  library,
  lr,
  weightDecay,
  p0,
  p1,
  lossBefore,
  lossAfter,
  decode,
  minShare = 0.9,
}) {
  const before = p0.map(decode);
  const after = p1.map(decode);
  let total = 0;
  let full = 0;
  before.forEach((b, t) => {
    if (after[t]?.length !== b.length) {
      throw new Error(`${library}: GPT step check: parameter ${t} changed size`);
    }
    for (let i = 0; i < b.length; i++) {
      const adam = Math.abs(after[t][i] - b[i] * (1 - lr * weightDecay));
      total++;
      if (!(adam <= lr * 1.01)) {
        throw new Error(
          `${library}: the timed GPT step moved parameter ${t}[${i}] by ${(after[t][i] - b[i]).toExponential(3)}, more than AdamW's first step (lr ${lr}) allows`,
        );
      }
      if (Math.abs(adam - lr) <= 0.01 * lr) full++;
    }
  });
  if (full < minShare * total) {
    throw new Error(
      `${library}: the timed GPT step did not apply AdamW's first update: only ${full} of ${total} parameters moved by lr`,
    );
  }
  if (!(lossAfter < lossBefore)) {
    throw new Error(
      `${library}: the timed GPT step did not lower its batch's loss (${lossBefore} before, ${lossAfter} after)`,
    );
  }
  return { movedByLr: full, parameters: total, lossBefore, lossAfter };
}
