// Two small models built from public ops only, checked against PyTorch (test/fixtures/models.json):
// an LSTM cell unrolled over three steps (torch.nn.LSTMCell weights, gate order i, f, g, o) and
// causal single-head self-attention. Forward values, the loss and every gradient must match.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import {
  expectClose,
  loadModelFixtures,
  MODEL_TOL,
  tensorFromData,
  type ModelFixture,
  type ShapedData,
} from './helpers/fixtures.js';

const fixtures = loadModelFixtures();

function entry(m: ModelFixture, section: keyof ModelFixture, name: string): ShapedData {
  const d = m[section][name];
  if (!d) throw new Error(`models.json has no ${section}.${name}`);
  return d;
}

/** The named fixture tensors as float32 leaves that require grad. */
function loadLeaves<K extends string>(m: ModelFixture, names: readonly K[]): Record<K, nb.Tensor> {
  const out = {} as Record<K, nb.Tensor>;
  for (const n of names) out[n] = tensorFromData(entry(m, 'tensors', n), true);
  return out;
}

function check(m: ModelFixture, section: 'outputs' | 'grads', name: string, t: nb.Tensor | null) {
  const d = entry(m, section, name);
  if (t === null) throw new Error(`${section}.${name}: tensor is null (no grad reached it?)`);
  expect(t.shape, `${section}.${name} shape`).toEqual(d.shape);
  expectClose(t.toArray(), d.data, MODEL_TOL, `${section}.${name}`);
}

function four(ts: nb.Tensor[]): [nb.Tensor, nb.Tensor, nb.Tensor, nb.Tensor] {
  const [a, b, c, d] = ts;
  if (ts.length !== 4 || !a || !b || !c || !d) throw new Error(`chunk(4) gave ${ts.length} pieces`);
  return [a, b, c, d];
}

/** Linear layer without bias, PyTorch convention: y = x @ W.T. */
const linear = (x: nb.Tensor, w: nb.Tensor): nb.Tensor => x.matmul(w.transpose(0, 1));

describe('LSTM cell, 3 steps, vs torch.nn.LSTMCell', () => {
  beforeAll(async () => {
    await nb.init();
  });

  it('matches final h and c, the loss and all gradients', () => {
    const m = fixtures.lstm;
    const p = loadLeaves(m, ['x', 'h0', 'c0', 'weight_ih', 'weight_hh', 'bias_ih', 'bias_hh']);
    const G = tensorFromData(entry(m, 'tensors', 'G'));

    let h = p.h0;
    let c = p.c0;
    const steps = p.x.shape[0] as number;
    for (let t = 0; t < steps; t++) {
      const xt = p.x.narrow(0, t, 1).squeeze(0);
      const gates = linear(xt, p.weight_ih)
        .add(p.bias_ih)
        .add(linear(h, p.weight_hh))
        .add(p.bias_hh);
      const [i, f, g, o] = four(gates.chunk(4, 1));
      c = f.sigmoid().mul(c).add(i.sigmoid().mul(g.tanh()));
      h = o.sigmoid().mul(c.tanh());
    }
    const loss = h.mul(G).sum();

    check(m, 'outputs', 'h', h);
    check(m, 'outputs', 'c', c);
    check(m, 'outputs', 'loss', loss);
    loss.backward();
    for (const [name, leaf] of Object.entries<nb.Tensor>(p)) check(m, 'grads', name, leaf.grad);
  });
});

describe('causal self-attention vs PyTorch', () => {
  beforeAll(async () => {
    await nb.init();
  });

  // Both masking routes: maskedFill(-inf) and where() against a -inf tensor.
  for (const via of ['maskedFill', 'where'] as const) {
    it(`matches the output, the loss and all gradients (mask via ${via})`, () => {
      const m = fixtures.attention;
      const p = loadLeaves(m, ['x', 'Wq', 'Wk', 'Wv', 'Wo']);
      const G = tensorFromData(entry(m, 'tensors', 'G'));
      const [, T, D] = p.x.shape as [number, number, number];

      const q = linear(p.x, p.Wq);
      const k = linear(p.x, p.Wk);
      const v = linear(p.x, p.Wv);
      const scores = q.matmul(k.transpose(-2, -1)).div(Math.sqrt(D));
      // causal[i][j] = 1 where key j comes after query i
      const pos = nb.arange(0, T);
      const causal = pos.unsqueeze(0).gt(pos.unsqueeze(1));
      const masked =
        via === 'maskedFill'
          ? scores.maskedFill(causal, -Infinity)
          : nb.where(causal, nb.full([T, T], -Infinity), scores);
      const out = linear(masked.softmax(-1).matmul(v), p.Wo);
      const loss = out.mul(G).sum();

      check(m, 'outputs', 'out', out);
      check(m, 'outputs', 'loss', loss);
      loss.backward();
      for (const [name, leaf] of Object.entries<nb.Tensor>(p)) check(m, 'grads', name, leaf.grad);
    });
  }
});
