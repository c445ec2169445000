// The speed issue's targets, checked against the rows of this run (single thread).
import { attentionTargets } from './attention.mjs';
import { cnnTargets } from './cnn.mjs';
import { FORM_LABEL } from './rows.mjs';

/** The row where `value(row)` is smallest among rows with a number, or null. */
function lowest(rows, value) {
  let best = null;
  for (const r of rows) {
    const v = value(r);
    if (typeof v === 'number' && (best === null || v < best.v)) best = { r, v };
  }
  return best;
}

function where(r) {
  return `${r.m}×${r.k}×${r.n} ${FORM_LABEL[r.form]}`;
}

export function checkTargets(rows) {
  const gemm = rows.filter((r) => r.section === 'gemm');
  const byId = Object.fromEntries(rows.map((r) => [r.id, r]));
  const out = [];
  const add = (target, found, fmt, pass) =>
    out.push({
      target,
      measured: found ? fmt(found) : 'n/a',
      value: found ? found.v : null,
      met: found && pass ? pass(found.v) : null,
    });

  const big = gemm.filter((r) => r.group === 'square' && r.m >= 256);
  add(
    'GEMM ≥ 25 GFLOP/s at 256³–1024³, every form',
    lowest(big, (r) => r.values.nabla),
    (f) => `lowest ${f.v.toFixed(1)} GFLOP/s (${where(f.r)})`,
    (v) => v >= 25,
  );
  for (const [form, goal] of [
    ['AB', 1],
    ['AtB', 8],
    ['ABt', 8],
  ]) {
    add(
      `${FORM_LABEL[form]} ≥ ${goal}x tfjs-wasm, every shape`,
      lowest(
        gemm.filter((r) => r.form === form),
        (r) => r.ratios['tfjs-wasm'],
      ),
      (f) => `lowest ${f.v.toFixed(2)}x (${where(f.r)})`,
      (v) => v >= goal,
    );
  }
  const train = byId['train:samplesPerSec'];
  for (const [peer, goal] of [
    ['tfjs-wasm', 5],
    ['tfjs-cpu', 30],
  ]) {
    const r = train?.ratios[peer];
    add(
      `MLP train step ≥ ${goal}x ${peer}`,
      typeof r === 'number' ? { v: r } : null,
      (f) => `${f.v.toFixed(2)}x`,
      (v) => v >= goal,
    );
  }
  const epoch = byId['epoch:seconds']?.values.nabla;
  add(
    'full MNIST epoch < 4 s',
    typeof epoch === 'number' ? { v: epoch } : null,
    (f) => `${f.v.toFixed(2)} s`,
    (v) => v < 4,
  );
  const mem = lowest(
    ['train:peakRss', 'epoch:peakRss', 'train:wasmHeap', 'epoch:wasmHeap']
      .map((id) => byId[id])
      .filter(Boolean),
    (r) => r.ratios['tfjs-wasm'],
  );
  add(
    'peak memory ≤ tfjs-wasm (RSS train/epoch, wasm heap)',
    mem,
    (f) => `lowest ${f.v.toFixed(2)}x (${f.r.label})`,
    (v) => v >= 1,
  );
  // The character-RNN goals (tokens/s); a peer that trained a variant is compared against it.
  for (const [id, peer, goal] of [
    ['rnn-lstm128:tokensPerSec', 'tfjs-wasm', 10],
    ['rnn-lstm128:tokensPerSec', 'torch', 0.8],
    ['rnn-lstm256:tokensPerSec', 'torch', 0.6],
    ['rnn-gru256:tokensPerSec', 'torch', null],
  ]) {
    const row = byId[id];
    const r = row?.ratios[peer];
    const variant = row?.cannot?.[peer] ? ` (its ${row.cannot[peer].variant})` : '';
    const name = peer === 'torch' ? 'native PyTorch' : peer;
    add(
      goal === null
        ? `vs native PyTorch: ${row?.label ?? id}`
        : `${row?.label ?? id} ≥ ${goal}x ${name}`,
      typeof r === 'number' ? { v: r } : null,
      (f) => `${f.v.toFixed(2)}x${variant}`,
      goal === null ? null : (v) => v >= goal,
    );
  }
  for (const id of ['train:samplesPerSec', 'epoch:seconds']) {
    const r = byId[id]?.ratios.torch;
    add(
      `vs native PyTorch: ${byId[id]?.label ?? id}`,
      typeof r === 'number' ? { v: r } : null,
      (f) => `${f.v.toFixed(2)}x`,
      null,
    );
  }
  return [...out, ...attentionTargets(rows), ...cnnTargets(rows)];
}
