// Error contract: a bad call throws the right NablaError subclass, and the message starts with
// the op name and quotes the offending shapes as `[2, 3]` (or the offending index value). The
// order in which a message mentions the shapes is free, so the checks are lookaheads.
import { beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../ts/index.js';

type ErrorClass = abstract new (...args: never[]) => Error;

function expectError(fn: () => unknown, cls: ErrorClass, message: RegExp): void {
  let caught: unknown = undefined;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  if (caught === undefined) {
    throw new Error(`expected ${cls.name} matching ${message}, nothing was thrown`);
  }
  expect(caught).toBeInstanceOf(cls);
  expect(caught).toBeInstanceOf(nb.NablaError);
  expect((caught as Error).message).toMatch(message);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `^op:` followed, anywhere and in any order, by every fragment. */
function msg(op: string, ...fragments: string[]): RegExp {
  return new RegExp(`^${op}:${fragments.map((f) => `(?=[\\s\\S]*${escape(f)})`).join('')}`);
}

const z = (...shape: number[]): nb.Tensor => nb.zeros(shape);
const idx = (values: number[], shape = [values.length]): nb.Tensor =>
  nb.tensor(Int32Array.from(values), { dtype: 'int32', shape });

beforeAll(async () => {
  await nb.init();
});

describe('error classes', () => {
  it('are NablaError subclasses', () => {
    for (const cls of [
      nb.ShapeError,
      nb.DTypeError,
      nb.IndexError,
      nb.DisposedError,
      nb.ValueError,
    ]) {
      expect(cls.prototype).toBeInstanceOf(nb.NablaError);
      expect(cls.prototype).toBeInstanceOf(Error);
    }
  });
});

describe('creation', () => {
  it('tensor: data length disagrees with shape', () => {
    expectError(
      () => nb.tensor(new Float32Array(5), { shape: [2, 3] }),
      nb.ShapeError,
      msg('tensor', '[2, 3]'),
    );
  });

  it('tensor: ragged nested array', () => {
    expectError(() => nb.tensor([[1, 2], [3]]), nb.ShapeError, msg('tensor'));
  });

  it('an int32 tensor cannot require grad', () => {
    // raised by the requiresGrad setter that tensor() goes through, so either name may lead
    expectError(
      () => nb.tensor([1, 2], { dtype: 'int32', requiresGrad: true }),
      nb.DTypeError,
      /^(tensor|requiresGrad):[\s\S]*int32/,
    );
  });
});

describe('elementwise broadcasting', () => {
  it('add', () => {
    expectError(() => z(2, 3).add(z(4, 5)), nb.ShapeError, msg('add', '[2, 3]', '[4, 5]'));
  });

  it('mul with a trailing-dim mismatch', () => {
    expectError(() => z(2, 3).mul(z(2)), nb.ShapeError, msg('mul', '[2, 3]', '[2]'));
  });

  it('where', () => {
    const cond = idx([1, 0, 1, 0, 1, 0], [2, 3]);
    expectError(
      () => nb.where(cond, z(3, 2), z(2, 3)),
      nb.ShapeError,
      msg('where', '[2, 3]', '[3, 2]'),
    );
  });

  it('maskedFill with a mask that does not broadcast to the input', () => {
    expectError(
      () => z(2, 4).maskedFill(idx([1, 0, 1]), 0),
      nb.ShapeError,
      msg('maskedFill', '[2, 4]', '[3]'),
    );
  });
});

describe('matmul', () => {
  it('misaligned inner dims', () => {
    expectError(() => z(2, 3).matmul(z(4, 5)), nb.ShapeError, msg('matmul', '[2, 3]', '[4, 5]'));
  });

  it('vectors of different lengths', () => {
    expectError(() => z(3).matmul(z(4)), nb.ShapeError, msg('matmul', '[3]', '[4]'));
  });

  it('batch dims that do not broadcast', () => {
    expectError(
      () => z(2, 3, 4).matmul(z(3, 4, 5)),
      nb.ShapeError,
      msg('matmul', '[2, 3, 4]', '[3, 4, 5]'),
    );
  });

  it('0-d operand', () => {
    expectError(() => z().matmul(z(3)), nb.ShapeError, msg('matmul', '[]', '[3]'));
  });

  it('transposed operands that do not align', () => {
    // [2, 3]ᵀ is 3×2: it cannot multiply a [3, 4]
    expectError(
      () => z(2, 3).matmul(z(3, 4), { transA: true }),
      nb.ShapeError,
      msg('matmul', '[2, 3] (a transposed)', '[3, 4]'),
    );
  });

  it('transA on a vector', () => {
    expectError(
      () => z(3).matmul(z(3, 4), { transA: true }),
      nb.ShapeError,
      msg('matmul', 'transA', '[3]'),
    );
  });
});

describe('shape ops', () => {
  it('reshape to a different size', () => {
    expectError(() => z(2, 3).reshape([4, 2]), nb.ShapeError, msg('reshape', '[2, 3]', '[4, 2]'));
  });

  it('reshape with two inferred dims', () => {
    expectError(() => z(2, 3).reshape([-1, -1]), nb.ShapeError, msg('reshape', '[-1, -1]'));
  });

  it('view to a different size', () => {
    expectError(() => z(2, 6).view([5, 2]), nb.ShapeError, msg('view', '[2, 6]', '[5, 2]'));
  });

  it('permute with a repeated dim', () => {
    expectError(
      () => z(2, 3, 4).permute([0, 0, 1]),
      nb.ShapeError,
      msg('permute', '[2, 3, 4]', '[0, 0, 1]'),
    );
  });

  it('permute with the wrong number of dims', () => {
    expectError(
      () => z(2, 3, 4).permute([1, 0]),
      nb.ShapeError,
      msg('permute', '[2, 3, 4]', '[1, 0]'),
    );
  });

  it('squeeze a dim out of range', () => {
    expectError(() => z(2, 3).squeeze(5), nb.ShapeError, msg('squeeze', '[2, 3]'));
  });

  it('unsqueeze a dim out of range', () => {
    // valid dims for a 2-d tensor are -3..2
    expectError(() => z(2, 3).unsqueeze(3), nb.ShapeError, msg('unsqueeze', '[2, 3]'));
  });

  it('transpose a dim out of range', () => {
    expectError(() => z(2, 3).transpose(0, 2), nb.ShapeError, msg('transpose', '[2, 3]'));
  });

  it('expand a non-singleton dim', () => {
    expectError(() => z(3, 2).expand([3, 4]), nb.ShapeError, msg('expand', '[3, 2]', '[3, 4]'));
  });

  it('expand to fewer dims', () => {
    expectError(() => z(2, 3).expand([3]), nb.ShapeError, msg('expand', '[2, 3]', '[3]'));
  });

  it('cat of mismatched shapes', () => {
    expectError(() => nb.cat([z(2, 3), z(2, 4)], 0), nb.ShapeError, msg('cat', '[2, 3]', '[2, 4]'));
  });

  it('cat of different ranks', () => {
    expectError(() => nb.cat([z(2, 3), z(3)], 0), nb.ShapeError, msg('cat', '[2, 3]', '[3]'));
  });

  it('stack of mismatched shapes', () => {
    expectError(
      () => nb.stack([z(2, 3), z(3, 2)]),
      nb.ShapeError,
      msg('stack', '[2, 3]', '[3, 2]'),
    );
  });

  it('split with sections that do not add up to the dim', () => {
    expectError(() => z(5, 3).split([1, 2], 0), nb.ShapeError, msg('split', '[1, 2]', '[5, 3]'));
  });
});

describe('dims out of range', () => {
  it('softmax', () => {
    expectError(() => z(2, 3).softmax(2), nb.ShapeError, msg('softmax', '[2, 3]'));
    expectError(() => z(2, 3).softmax(-3), nb.ShapeError, msg('softmax', '[2, 3]'));
  });

  it('sum', () => {
    expectError(() => z(2, 3).sum(3), nb.ShapeError, msg('sum', '[2, 3]'));
  });
});

describe('indexing', () => {
  it('gather with an index of the wrong rank', () => {
    expectError(
      () => z(3, 4).gather(0, idx([0, 1])),
      nb.ShapeError,
      msg('gather', '[3, 4]', '[2]'),
    );
  });

  it('scatterAdd with src smaller than index', () => {
    const index = idx([0, 1, 2, 0, 1, 2], [2, 3]);
    expectError(
      () => z(3, 4).scatterAdd(0, index, z(2, 2)),
      nb.ShapeError,
      msg('scatterAdd', '[2, 3]', '[2, 2]'),
    );
  });

  it('indexSelect with a float index', () => {
    const index = nb.tensor([0, 1], { dtype: 'float32' });
    expectError(() => z(3, 4).indexSelect(0, index), nb.DTypeError, msg('indexSelect', 'float32'));
  });

  it('gather with a float index', () => {
    expectError(() => z(3, 4).gather(0, z(2, 4)), nb.DTypeError, msg('gather', 'float32'));
  });

  it('indexSelect with an index past the end', () => {
    expectError(() => z(3, 4).indexSelect(0, idx([0, 7])), nb.IndexError, msg('indexSelect', '7'));
  });

  it('indexSelect with a negative index', () => {
    expectError(() => z(3, 4).indexSelect(0, idx([-1])), nb.IndexError, msg('indexSelect', '-1'));
  });

  it('gather with an index past the end', () => {
    expectError(() => z(3, 4).gather(1, idx([0, 9], [1, 2])), nb.IndexError, msg('gather', '9'));
  });

  it('oneHot with a class past numClasses', () => {
    expectError(() => nb.oneHot(idx([0, 6]), 4), nb.IndexError, msg('oneHot', '6'));
  });
});

describe('autograd and reading', () => {
  it('backward without a gradient on a non-scalar output', () => {
    const x = nb.tensor(new Float32Array(6), { shape: [2, 3], requiresGrad: true });
    expectError(() => x.mul(2).backward(), nb.ValueError, msg('backward', '[2, 3]'));
  });

  it('item on a tensor with more than one element', () => {
    expectError(() => z(2, 3).item(), nb.ValueError, msg('item', '[2, 3]'));
  });

  it('backward with a gradient of the wrong shape', () => {
    const x = nb.tensor(new Float32Array(6), { shape: [2, 3], requiresGrad: true });
    expectError(
      () => x.mul(2).backward(z(3, 2)),
      nb.ShapeError,
      msg('backward', '[2, 3]', '[3, 2]'),
    );
  });
});

describe('disposed tensors', () => {
  // DisposedError is raised where storage is touched, which may not know the op's name
  it('cannot be used as the receiver', () => {
    const t = z(2, 3);
    t.dispose();
    expectError(() => t.add(1), nb.DisposedError, /dispose/);
  });

  it('cannot be used as an argument', () => {
    const a = z(2, 3);
    const b = z(3, 2);
    b.dispose();
    expectError(() => a.matmul(b), nb.DisposedError, /dispose/);
  });

  it('cannot be read', () => {
    const t = z(2, 3);
    t.dispose();
    expectError(() => t.toArray(), nb.DisposedError, /dispose/);
  });
});
