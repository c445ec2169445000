// torchvision-style ResNet (BasicBlocks, downsampling, BatchNorm buffers) against PyTorch 1.13
// with torchvision's own BasicBlock (test/fixtures/conv.json "resnet", from
// scripts/fixtures/make_conv_fixtures.py): torch's state dict loads strictly and gives the same
// outputs and gradients in training and eval mode, nabla's file (write_nabla_resnet_state.mjs)
// loads strictly into torch with the same eval output, nn.resnet18 has exactly
// torchvision.models.resnet18's state-dict names and shapes, and 30 Adam steps of a small
// conv-bn-relu-pool CNN follow torch's losses to 1e-4 and end at its weights and statistics.
//
// Tolerances: rtol 1e-4 (a model: dozens of ops in float32) and an absolute floor of 1e-6 of
// the largest expected value (at least 1e-5): a weight gradient sums hundreds of products, so
// an element that cancels to near zero carries the rounding of its largest terms (e.g. 1.3e-5
// on 0.0128 where the same gradient reaches 100).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';
import { nn } from '../ts/index.js';
import { assertClose } from './helpers/close.js';

beforeAll(async () => {
  await nb.init();
});

interface Shaped {
  shape: number[];
  data: number[];
}
interface Step {
  training: boolean;
  input: Shaped;
  out: Shaped;
  upstream: number[];
  grads: { input: number[]; params: Record<string, number[]> };
  runningMeanAfter: number[];
}
interface ResNetCase {
  name: string;
  options: nb.nn.ResNetOptions;
  state: [string, number[], number[]][];
  steps: Step[];
}

const fx = JSON.parse(readFileSync('test/fixtures/conv.json', 'utf8')) as {
  resnet: ResNetCase[];
  resnetFromNabla: { input: Shaped; out: Shaped };
  resnet18Names: [string, number[]][];
};
const TOL = { rtol: 1e-4, atol: 1e-5 };
const tol = (expected: number[]) => ({
  rtol: 1e-4,
  atol: Math.max(1e-5, 1e-6 * Math.max(...expected.map(Math.abs))),
});
const values = (t: nb.Tensor | null) => Array.from(t!.toArray());

describe('ResNet vs torchvision blocks', () => {
  for (const c of fx.resnet) {
    it(c.name, () => {
      const m = new nn.ResNet(c.options);
      const sd = Object.fromEntries(
        c.state.map(([k, shape, data]) => [
          k,
          nb.tensor(data, { shape, dtype: k.endsWith('tracked') ? 'int32' : 'float32' }),
        ]),
      );
      expect(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape])).toEqual(
        c.state.map(([k, shape]) => [k, shape]),
      );
      m.loadStateDict(sd);
      for (const s of c.steps) {
        nb.tidy(() => {
          m.train(s.training);
          m.zeroGrad();
          const x = nb.tensor(s.input.data, { shape: s.input.shape, requiresGrad: true });
          const y = m.forward(x);
          const what = `${c.name} ${s.training ? 'train' : 'eval'}`;
          assertClose(values(y), s.out.data, TOL, `${what} out`);
          y.backward(nb.tensor(s.upstream, { shape: y.shape }));
          assertClose(values(x.grad), s.grads.input, tol(s.grads.input), `${what} d input`);
          for (const [k, p] of m.namedParameters()) {
            const want = s.grads.params[k];
            assertClose(values(p.grad), want, tol(want), `${what} d ${k}`);
          }
          assertClose(values(m.bn1.runningMean), s.runningMeanAfter, TOL, `${what} running mean`);
        });
      }
      m.dispose();
    });
  }

  it("nabla's saved ResNet loads strictly into torch with the same output", () => {
    const bytes = readFileSync('test/fixtures/resnet_nabla.safetensors');
    const m = new nn.ResNet({ layers: [2, 1, 1], baseWidth: 8, numClasses: 5, smallInput: true });
    m.loadStateDict(nb.io.loadSafetensors(bytes));
    m.eval();
    const { input, out } = fx.resnetFromNabla;
    const y = nb.noGrad(() => m.forward(nb.tensor(input.data, { shape: input.shape })));
    assertClose(values(y), out.data, TOL, 'torch on nabla weights');
    m.dispose();
  });

  it("resnet18 has torchvision's state-dict names and shapes, in order", () => {
    const m = nn.resnet18({ numClasses: 10 });
    expect(Object.entries(m.stateDict()).map(([k, t]) => [k, t.shape])).toEqual(fx.resnet18Names);
    // torchvision's init: kaiming-normal fan-out convs, BatchNorm ones and zeros.
    const w = values(m.conv1.weight) as number[];
    const std = Math.sqrt(w.reduce((a, v) => a + v * v, 0) / w.length);
    expect(std).toBeGreaterThan(0.9 * Math.sqrt(2 / (64 * 49)));
    expect(std).toBeLessThan(1.1 * Math.sqrt(2 / (64 * 49)));
    expect(new Set(values(m.bn1.weight))).toEqual(new Set([1]));
    const z = new nn.ResNet({ layers: [1], baseWidth: 4, zeroInitResidual: true });
    expect(new Set(values((z.layer1.at(0) as nn.BasicBlock).bn2.weight))).toEqual(new Set([0]));
    expect(() => new nn.ResNet({ layers: [] })).toThrow(/ResNet: layers must be 1 to 4/);
    m.dispose();
    z.dispose();
  });
});

describe('a CNN training trajectory vs PyTorch', () => {
  it('30 Adam steps of conv-bn-relu-pool blocks: every loss to 1e-4, final weights and statistics', () => {
    const t = (fx as unknown as { cnnTrajectory: Trajectory }).cnnTrajectory;
    const m = new nn.Sequential(
      new nn.Conv2d(1, 6, 3, { padding: 1, bias: false }),
      new nn.BatchNorm2d(6),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Conv2d(6, 8, 3, { padding: 1, bias: false }),
      new nn.BatchNorm2d(8),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Dropout(0),
      new nn.Linear(8 * 3 * 3, 4),
    );
    const state = (s: Trajectory['initial']) =>
      Object.fromEntries(
        s.map(([k, shape, data]) => [
          k,
          nb.tensor(data, { shape, dtype: k.endsWith('tracked') ? 'int32' : 'float32' }),
        ]),
      );
    m.loadStateDict(state(t.initial));
    const xs = t.inputs.map((x) => nb.keep(nb.tensor(x.data, { shape: x.shape })));
    const ys = t.labels.map((y) => nb.keep(nb.tensor(y, { dtype: 'int32' })));
    const opt = new nb.optim.Adam(m.parameters(), { lr: 0.01 });
    const losses: number[] = [];
    for (let i = 0; i < t.losses.length; i++) {
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(m.forward(xs[i % 4]) as nb.Tensor, ys[i % 4]);
      loss.backward();
      opt.step();
      losses.push(loss.item() as number);
    }
    assertClose(losses, t.losses, { rtol: 1e-4, atol: 1e-6 }, 'losses');
    const sd = m.stateDict();
    for (const [k, , data] of t.final) {
      if (k.endsWith('tracked')) expect(Array.from(sd[k].toArray()), k).toEqual(data);
      else assertClose(values(sd[k]), data, { rtol: 1e-4, atol: 1e-5 }, `final ${k}`);
    }
    m.dispose();
  });
});

interface Trajectory {
  initial: [string, number[], number[]][];
  inputs: Shaped[];
  labels: number[][];
  losses: number[];
  final: [string, number[], number[]][];
}
