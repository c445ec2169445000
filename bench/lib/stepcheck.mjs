// Verifies that a library's timed training step really trains: the parent checks what every
// child (JS or Python) reports about the first call of its timed step closure.
//
// - The update of that first step must be Adam's first update computed independently here:
//   with m̂ = g and v̂ = g², Δ = -lr · g / (|g| + eps), where g is the gradient of the mean
//   cross-entropy of the MLP at the reported starting weights on batch 0, in float64.
// - The loss over the timed steps must fall: the mean of the last cycle over the fixed batches
//   is below the mean of the first.
// A step that skips backward, the optimizer, or the whole computation fails one of the two.

const EPS = 1e-8;

/** Float32Array ↔ base64, so parameters cross the process boundary compactly and exactly. */
export function encodeF32(a) {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
}

export function decodeF32(s) {
  const b = Buffer.from(s, 'base64');
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/**
 * Gradients (float64) of mean cross-entropy for the ReLU MLP with PyTorch-layout parameters
 * [W1 (out×in), b1, W2, b2, ...] on images x (rows×784 floats) and labels y.
 */
export function mlpGradients(layers, params, x, y, rows) {
  const L = layers.length - 1;
  const acts = [Float64Array.from(x)]; // activations entering each layer
  for (let l = 0; l < L; l++) {
    const [inF, outF] = [layers[l], layers[l + 1]];
    const W = params[2 * l];
    const b = params[2 * l + 1];
    const a = acts[l];
    const z = new Float64Array(rows * outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        let s = b[o];
        const wo = o * inF;
        const ar = r * inF;
        for (let i = 0; i < inF; i++) s += a[ar + i] * W[wo + i];
        z[r * outF + o] = l + 1 < L ? Math.max(0, s) : s;
      }
    }
    acts.push(z);
  }
  // d(mean CE)/d(logits) = (softmax - onehot) / rows
  const C = layers[L];
  let delta = new Float64Array(rows * C);
  const logits = acts[L];
  for (let r = 0; r < rows; r++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, logits[r * C + c]);
    let sum = 0;
    for (let c = 0; c < C; c++) sum += Math.exp(logits[r * C + c] - max);
    for (let c = 0; c < C; c++) {
      const p = Math.exp(logits[r * C + c] - max) / sum;
      delta[r * C + c] = (p - (c === y[r] ? 1 : 0)) / rows;
    }
  }
  const grads = new Array(2 * L);
  for (let l = L - 1; l >= 0; l--) {
    const [inF, outF] = [layers[l], layers[l + 1]];
    const a = acts[l];
    const gW = new Float64Array(outF * inF);
    const gb = new Float64Array(outF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        const d = delta[r * outF + o];
        if (d === 0) continue;
        gb[o] += d;
        const wo = o * inF;
        const ar = r * inF;
        for (let i = 0; i < inF; i++) gW[wo + i] += d * a[ar + i];
      }
    }
    grads[2 * l] = gW;
    grads[2 * l + 1] = gb;
    if (l === 0) break;
    const W = params[2 * l];
    const prev = new Float64Array(rows * inF);
    for (let r = 0; r < rows; r++) {
      for (let o = 0; o < outF; o++) {
        const d = delta[r * outF + o];
        if (d === 0) continue;
        const wo = o * inF;
        for (let i = 0; i < inF; i++) prev[r * inF + i] += d * W[wo + i];
      }
      // through the ReLU that produced a (its output is a)
      for (let i = 0; i < inF; i++) if (a[r * inF + i] <= 0) prev[r * inF + i] = 0;
    }
    delta = prev;
  }
  return grads;
}

/**
 * Checks the first step's update against Adam's first update. Elements whose reference
 * gradient is large enough that float32 cannot flip its sign must match to 1% of lr; the rest
 * (tiny or zero gradients) may move at most lr. Throws with the first mismatch.
 */
export function checkFirstAdamStep({ library, layers, lr, p0, p1, x, y, rows }) {
  const before = p0.map(decodeF32);
  const after = p1.map(decodeF32);
  const grads = mlpGradients(layers, before, x, y, rows);
  let strong = 0;
  let total = 0;
  let moved = 0;
  grads.forEach((g, t) => {
    if (g.length !== before[t].length || g.length !== after[t].length) {
      throw new Error(
        `${library}: training step check: parameter ${t} has ${before[t].length}/${after[t].length} values, expected ${g.length}`,
      );
    }
    for (let i = 0; i < g.length; i++) {
      const delta = after[t][i] - before[t][i];
      total++;
      if (delta !== 0) moved++;
      if (Math.abs(g[i]) > 1e-5) {
        strong++;
        const want = (-lr * g[i]) / (Math.abs(g[i]) + EPS);
        if (!(Math.abs(delta - want) <= 0.01 * lr)) {
          throw new Error(
            `${library}: the timed training step did not apply the expected Adam update: parameter ${t}[${i}] moved ${delta.toExponential(3)}, expected ${want.toExponential(3)} (gradient ${g[i].toExponential(3)})`,
          );
        }
      } else if (!(Math.abs(delta) <= lr * 1.001)) {
        throw new Error(
          `${library}: the timed training step moved parameter ${t}[${i}] by ${delta.toExponential(3)}, more than lr ${lr} allows`,
        );
      }
    }
  });
  // Most weights of an MLP on real data get a gradient; if not, the check proved nothing.
  if (strong < 0.1 * total) {
    throw new Error(
      `${library}: training step check: only ${strong} of ${total} parameters have a gradient above 1e-5`,
    );
  }
  return { checkedElements: strong, parameters: total, moved };
}

/**
 * The RNN workload's first-update check, which needs no gradient reference: Adam's first step
 * moves every weight whose gradient is not tiny (|g| ≫ eps) by lr, whatever the library's
 * layout. No element may move by more than lr, and at least `share` of all elements must move
 * by lr to within 1%. A step without backward moves nothing; plain SGD moves weights by lr·g.
 * `least` is the parameter count the model must at least have (all parameters reported).
 */
export function checkAdamStepSize({ library, lr, p0, p1, least, share = 0.8 }) {
  const before = p0.map(decodeF32);
  const after = p1.map(decodeF32);
  let total = 0;
  let atLr = 0;
  let moved = 0;
  before.forEach((b, t) => {
    if (b.length !== after[t].length) {
      throw new Error(
        `${library}: training step check: parameter ${t} has ${b.length} values before the step and ${after[t].length} after`,
      );
    }
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs(after[t][i] - b[i]);
      total++;
      if (d !== 0) moved++;
      // float32 rounding of weights up to ~4 in size adds a few 1e-7 to a step of 1e-3
      if (!(d <= lr * 1.002)) {
        throw new Error(
          `${library}: the timed training step moved parameter ${t}[${i}] by ${d.toExponential(3)}, more than Adam's first update (lr ${lr}) allows`,
        );
      }
      if (Math.abs(d - lr) <= 0.01 * lr) atLr++;
    }
  });
  if (total < least) {
    throw new Error(
      `${library}: training step check: ${total} parameters reported, the model has at least ${least}`,
    );
  }
  if (atLr < share * total) {
    throw new Error(
      `${library}: the timed training step did not apply Adam's first update: only ${atLr} of ${total} parameters moved by lr ${lr} (${moved} moved at all)`,
    );
  }
  return { parameters: total, movedByLr: atLr, moved };
}

/**
 * The loss over the timed steps must fall: the mean of the last cycle over the fixed batches
 * below `factor` (95%) of the first (a slow library that ran under two cycles compares its
 * halves).
 */
export function checkLossFalls({ library, losses, cycle, factor = 0.95 }) {
  if (!Array.isArray(losses) || losses.length < 4) {
    throw new Error(`${library}: training step check: ${losses?.length ?? 0} losses recorded`);
  }
  const window = Math.min(cycle, Math.floor(losses.length / 2));
  const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
  const first = mean(losses.slice(0, window));
  const last = mean(losses.slice(-window));
  if (!(Number.isFinite(first) && Number.isFinite(last) && last < factor * first)) {
    throw new Error(
      `${library}: the loss of the timed training steps did not fall (first cycle ${first}, last cycle ${last})`,
    );
  }
  return { firstCycleLoss: first, lastCycleLoss: last };
}
