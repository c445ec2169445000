// Convolutions against PyTorch 1.13 (test/fixtures/conv.json, from
// scripts/fixtures/make_conv_fixtures.py): nn.Conv1d / Conv2d / ConvTranspose2d for every
// option (stride, padding incl. 'same' / 'valid' and even kernels, dilation, groups incl.
// depthwise, padding modes, no bias, rectangular kernels, unbatched inputs), loaded strictly
// from torch's state dict: outputs and the gradients of input, weight and bias. Also the
// functional forms against finite differences, PyTorch's initialisation bounds and reprs, and
// typed errors.
//
// Tolerances: rtol 1e-5, atol 1e-5, as for matmul (each output sums C·kh·kw float32 products).
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
interface ConvCase {
  name: string;
  kind: 'Conv1d' | 'Conv2d' | 'ConvTranspose2d';
  args: [number, number, number | number[]];
  options: Record<string, unknown>;
  state: [string, number[], number[]][];
  input: Shaped;
  out: Shaped;
  upstream: number[];
  grads: { input: number[]; params: Record<string, number[]> };
}

const fixtures = JSON.parse(readFileSync('test/fixtures/conv.json', 'utf8')) as {
  cases: ConvCase[];
};
const TOL = { rtol: 1e-5, atol: 1e-5 };
const values = (t: nb.Tensor | null) => Array.from(t!.toArray() as Float32Array);

function build(c: ConvCase): nn.Conv2d | nn.Conv1d | nn.ConvTranspose2d {
  const [cin, cout, k] = c.args;
  const ctor = { Conv1d: nn.Conv1d, Conv2d: nn.Conv2d, ConvTranspose2d: nn.ConvTranspose2d }[
    c.kind
  ];
  return new ctor(cin, cout, k, c.options as never);
}

describe('conv modules vs PyTorch', () => {
  it('covers every kind and option', () => {
    const kinds = new Set(fixtures.cases.map((c) => c.kind));
    expect([...kinds].sort()).toEqual(['Conv1d', 'Conv2d', 'ConvTranspose2d']);
    const opts = new Set(fixtures.cases.flatMap((c) => Object.keys(c.options)));
    for (const o of ['stride', 'padding', 'dilation', 'groups', 'bias', 'paddingMode']) {
      expect(opts.has(o), o).toBe(true);
    }
    expect(opts.has('outputPadding')).toBe(true);
  });

  for (const c of fixtures.cases) it(c.name, () => checkCase(c));

  // The 3×3 stride-1 case with 16+ channels again with Winograd's kernels (forward, input and
  // weight gradients), which only run when asked for.
  const wide = fixtures.cases.filter((c) => c.name === 'conv2d wide');
  it('conv2d wide, with nb.backends.conv.winograd', () => {
    expect(wide.length).toBe(1);
    expect(nb.backends.conv.winograd).toBe(false);
    nb.backends.conv.winograd = true;
    try {
      checkCase(wide[0]);
    } finally {
      nb.backends.conv.winograd = false;
    }
  });

  function checkCase(c: (typeof fixtures.cases)[number]): void {
    nb.tidy(() => {
      const m = build(c);
      const sd = Object.fromEntries(
        c.state.map(([k, shape, data]) => [k, nb.tensor(Float32Array.from(data), { shape })]),
      );
      // The names and shapes torch saves load strictly.
      expect(m.namedParameters().map(([k, p]) => [k, p.shape])).toEqual(
        c.state.map(([k, shape]) => [k, shape]),
      );
      m.loadStateDict(sd);
      const x = nb.tensor(Float32Array.from(c.input.data), {
        shape: c.input.shape,
        requiresGrad: true,
      });
      const y = m.forward(x);
      expect(y.shape).toEqual(c.out.shape);
      assertClose(values(y), c.out.data, TOL, `${c.name} out`);
      y.backward(nb.tensor(Float32Array.from(c.upstream), { shape: y.shape }));
      assertClose(values(x.grad), c.grads.input, TOL, `${c.name} d input`);
      for (const [k, p] of m.namedParameters()) {
        assertClose(values(p.grad), c.grads.params[k], TOL, `${c.name} d ${k}`);
      }
      m.dispose();
    });
  }
});

describe('conv functional forms vs finite differences', () => {
  const F = nn.functional;
  const r = (shape: number[]) => nb.randn(shape, { requiresGrad: true });
  const cases: Record<string, [(...t: nb.Tensor[]) => nb.Tensor, () => nb.Tensor[]]> = {
    conv2d: [
      (x, w, b) => F.conv2d(x, w, b, { stride: 2, padding: 1, dilation: [1, 2] }),
      () => [r([2, 2, 5, 6]), r([3, 2, 3, 2]), r([3])],
    ],
    conv2dGroupsSame: [
      (x, w) => F.conv2d(x, w, null, { groups: 2, padding: 'same' }),
      () => [r([1, 4, 4, 5]), r([4, 2, 2, 3])],
    ],
    conv1d: [
      (x, w, b) => F.conv1d(x, w, b, { stride: 2, padding: 2, dilation: 2 }),
      () => [r([2, 3, 9]), r([2, 3, 3]), r([2])],
    ],
    convTranspose2d: [
      (x, w, b) =>
        F.convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }),
      () => [r([2, 4, 3, 3]), r([4, 1, 3, 3]), r([2])],
    ],
  };
  for (const [name, [fn, inputs]] of Object.entries(cases)) {
    it(name, () => {
      nb.manualSeed(77);
      const res = nb.gradcheck(fn, inputs());
      expect(res.ok, `${name}: ${res.maxAbsError} ${JSON.stringify(res.worst)}`).toBe(true);
    });
  }
});

describe('conv modules like PyTorch', () => {
  it('initialise weight and bias in U(±1/√fanIn)', () => {
    nb.manualSeed(3);
    const m = new nn.Conv2d(6, 64, [3, 5], { groups: 2 });
    const bound = 1 / Math.sqrt(3 * 3 * 5);
    for (const t of [m.weight, m.bias!]) {
      const v = values(t);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0.9 * bound);
    }
    const t = new nn.ConvTranspose2d(8, 6, 3, { groups: 2 });
    expect(t.weight.shape).toEqual([8, 3, 3, 3]);
    expect(Math.max(...values(t.weight).map(Math.abs))).toBeLessThanOrEqual(1 / Math.sqrt(27));
    expect(Math.max(...values(t.weight).map(Math.abs))).toBeGreaterThan(0.9 / Math.sqrt(27));
  });

  it('print as PyTorch does', () => {
    expect(String(new nn.Conv2d(3, 8, 3))).toBe('Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))');
    expect(
      String(
        new nn.Conv2d(4, 8, [3, 2], {
          stride: 2,
          padding: 1,
          dilation: 2,
          groups: 4,
          bias: false,
          paddingMode: 'reflect',
        }),
      ),
    ).toBe(
      'Conv2d(4, 8, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), dilation=(2, 2), groups=4, bias=False, padding_mode=reflect)',
    );
    expect(String(new nn.Conv1d(2, 4, 3, { padding: 'same' }))).toBe(
      'Conv1d(2, 4, kernel_size=(3,), stride=(1,), padding=same)',
    );
    expect(String(new nn.ConvTranspose2d(4, 2, 3, { stride: 2, outputPadding: 1 }))).toBe(
      'ConvTranspose2d(4, 2, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))',
    );
  });

  it('reject what PyTorch rejects, with typed errors naming the op and shapes', () => {
    expect(() => new nn.Conv2d(3, 4, 3, { groups: 2 })).toThrow(
      /Conv2d: inChannels must be divisible by groups/,
    );
    expect(() => new nn.Conv2d(4, 3, 3, { groups: 2 })).toThrow(
      /Conv2d: outChannels must be divisible by groups/,
    );
    expect(() => new nn.Conv2d(3, 4, 3, { padding: 'same', stride: 2 })).toThrow(
      /padding='same' is not supported for strided convolutions/,
    );
    expect(() => new nn.Conv2d(3, 4, 3, { padding: 'full' as never })).toThrow(
      /invalid padding string 'full'/,
    );
    expect(() => new nn.Conv2d(3, 4, 3, { paddingMode: 'mirror' as never })).toThrow(
      /paddingMode must be one of/,
    );
    expect(() => new nn.Conv2d(3, 4, 0)).toThrow(/kernelSize must be an integer >= 1/);
    expect(() => new nn.ConvTranspose2d(3, 4, 3, { paddingMode: 'reflect' as never })).toThrow(
      /only 'zeros' padding mode/,
    );
    const m = new nn.Conv2d(3, 4, 3);
    expect(() => m.forward(nb.zeros([2, 5, 6, 6]))).toThrow(nb.ShapeError);
    expect(() => m.forward(nb.zeros([2, 5, 6, 6]))).toThrow(
      /conv2d: given groups=1, weight of size \[4, 3, 3, 3\], expected input \[2, 5, 6, 6\] to have 3 channels, but got 5/,
    );
    expect(() => m.forward(nb.zeros([3, 6]))).toThrow(/conv2d: expected a 3-D \(unbatched\)/);
    expect(() => m.forward(nb.zeros([1, 3, 2, 2]))).toThrow(/conv2d: kernel \[3, 3\]/);
    expect(() => m.forward(nb.zeros([1, 3, 4, 4], { dtype: 'int32' }))).toThrow(nb.DTypeError);
    const t = new nn.ConvTranspose2d(3, 4, 3);
    expect(() => t.forward(nb.zeros([1, 2, 4, 4]))).toThrow(
      /convTranspose2d: given transposed=1, weight of size \[3, 4, 3, 3\], expected input \[1, 2, 4, 4\] to have 3 channels/,
    );
    expect(() =>
      nn.functional.convTranspose2d(nb.zeros([1, 3, 4, 4]), t.weight, null, {
        stride: 2,
        outputPadding: 2,
      }),
    ).toThrow(/output padding must be smaller than either stride or dilation/);
    expect(() => nn.functional.conv2d(nb.zeros([1, 3, 4, 4]), m.weight, nb.zeros([3]))).toThrow(
      /conv2d: bias must be \[4\]/,
    );
    m.dispose();
    t.dispose();
  });

  it('a training loop without memory calls keeps the live tensors flat', () => {
    nb.manualSeed(4);
    const model = new nn.Sequential(
      new nn.Conv2d(1, 4, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.Conv2d(4, 2, 3, { stride: 2 }),
      new nn.Flatten(),
      new nn.Linear(2 * 3 * 3, 3),
    );
    const opt = new nb.optim.SGD(model.parameters(), { lr: 0.01 });
    const x = nb.keep(nb.randn([4, 1, 7, 7]));
    const y = nb.keep(nb.tensor(Int32Array.from([0, 1, 2, 1]), { dtype: 'int32' }));
    const live: number[] = [];
    for (let i = 0; i < 12; i++) {
      opt.zeroGrad();
      const loss = nn.functional.crossEntropy(model.forward(x) as nb.Tensor, y);
      loss.backward();
      opt.step();
      live.push(nb.memory().tensors);
    }
    expect(live[11]).toBe(live[4]);
    model.dispose();
  });
});
