// DataLoader: batches of a Dataset, in order or shuffled by a seeded per-epoch permutation.
import { ValueError } from '../errors.js';
import { noGrad } from '../autograd/node.js';
import { tidy } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { tensor } from '../ops/creation.js';
import { indexSelect } from '../ops/indexing.js';
import { stack } from '../ops/shape.js';
import { Dataset, Subset, TensorDataset } from './dataset.js';
import { keyFor, randperm } from './shuffle.js';

/** What a batch of samples of type `T` looks like: tensors and numbers gain a leading dim. */
export type Collated<T> = T extends Tensor
  ? Tensor
  : T extends number | boolean
    ? Tensor
    : T extends string
      ? string[]
      : T extends readonly unknown[]
        ? { -readonly [K in keyof T]: Collated<T[K]> }
        : T extends object
          ? { [K in keyof T]: Collated<T[K]> }
          : never;

export interface DataLoaderOptions {
  /** Samples per batch (default 1). */
  batchSize?: number;
  /** Visit samples in a new random order every epoch (default false). */
  shuffle?: boolean;
  /** Seed for the shuffles; without it they follow the global seed (`nb.manualSeed`). */
  seed?: number;
  /** Skip the last batch when it would be smaller than `batchSize` (default false). */
  dropLast?: boolean;
}

/**
 * Iterates a dataset in batches; each `for...of` is one epoch.
 *
 * Batches are fresh tensors owned by the training loop, which disposes them (or makes them
 * inside a scope that does):
 * ```ts
 * for (const [x, y] of loader) {
 *   nb.tidy(() => step(x, y));
 *   x.dispose();
 *   y.dispose();
 * }
 * ```
 * A TensorDataset (or a Subset of one) is batched with one `indexSelect` per tensor (unless a
 * subclass overrides `get`); other datasets are collated from `get(i)` with `nb.stack` (numbers become a tensor, arrays and
 * objects are collated field by field).
 */
export class DataLoader<T> implements Iterable<Collated<T>> {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  private readonly seed: number | undefined;
  /**
   * Index of the next epoch, which (with `seed`) picks its shuffle order. `fit` sets it, so a
   * run resumed from a checkpoint sees the same orders as an uninterrupted one.
   */
  epoch = 0;

  constructor(
    readonly dataset: Dataset<T>,
    opts: DataLoaderOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 1;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1) {
      throw new ValueError(
        `DataLoader: batchSize must be a positive integer, got ${opts.batchSize}`,
      );
    }
    if (opts.seed !== undefined && !Number.isFinite(opts.seed)) {
      throw new ValueError(`DataLoader: seed must be a finite number, got ${opts.seed}`);
    }
    this.shuffle = opts.shuffle ?? false;
    this.dropLast = opts.dropLast ?? false;
    this.seed = opts.seed;
  }

  /** Number of batches in one epoch. */
  get length(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** Starts an epoch: draws this epoch's order now, then yields batches lazily. */
  [Symbol.iterator](): Iterator<Collated<T>> {
    const n = this.dataset.length;
    let order: Int32Array;
    if (this.shuffle) {
      order = randperm(n, keyFor('DataLoader', this.seed, this.epoch));
    } else {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) order[i] = i;
    }
    this.epoch++;
    return this.batches(order, tensorSource(this.dataset));
  }

  private *batches(order: Int32Array, source: TensorSource | null): Generator<Collated<T>> {
    const count = this.length;
    for (let b = 0; b < count; b++) {
      const ids = order.subarray(b * this.batchSize, (b + 1) * this.batchSize);
      yield (source ? selectRows(source, ids) : this.collateItems(ids)) as Collated<T>;
    }
  }

  private collateItems(ids: Int32Array): unknown {
    // tidy frees what get() made; tensors the dataset stores are outside the scope and stay.
    return tidy(() => collate(Array.from(ids, (i) => this.dataset.get(i))));
  }
}

/** Tensors to index directly, with an optional map from dataset index to row. */
interface TensorSource {
  tensors: Tensor[];
  rows: Int32Array | null;
}

/** True when `ds` is a `cls` whose class does not override `get` (e.g. to augment). */
function plain(ds: Dataset<unknown>, cls: typeof TensorDataset | typeof Subset): boolean {
  return ds instanceof cls && Object.getPrototypeOf(ds).get === cls.prototype.get;
}

/** Sees through Subsets down to a TensorDataset, composing their index maps. */
function tensorSource(ds: Dataset<unknown>): TensorSource | null {
  if (plain(ds, TensorDataset)) return { tensors: (ds as TensorDataset).tensors, rows: null };
  if (!plain(ds, Subset)) return null;
  const sub = ds as Subset<unknown>;
  const inner = tensorSource(sub.dataset);
  if (!inner) return null;
  const rows = inner.rows ? sub.indices.map((i) => inner.rows![i]) : sub.indices;
  return { tensors: inner.tensors, rows };
}

function selectRows(source: TensorSource, ids: Int32Array): Tensor[] {
  const rows = source.rows ? ids.map((i) => source.rows![i]) : ids.slice();
  return tidy(() =>
    noGrad(() => {
      const index = tensor(rows, { shape: [rows.length] });
      return source.tensors.map((t) => indexSelect(t, 0, index));
    }),
  );
}

/** PyTorch's default_collate for tensors, numbers, strings, arrays and plain objects. */
function collate(items: unknown[]): unknown {
  const first = items[0];
  if (first instanceof Tensor) {
    if (!items.every((v) => v instanceof Tensor)) throw mixed(items);
    return stack(items as Tensor[]);
  }
  if (typeof first === 'number' || typeof first === 'boolean') {
    if (!items.every((v) => typeof v === typeof first)) throw mixed(items);
    return tensor(items as number[]);
  }
  if (typeof first === 'string') {
    if (!items.every((v) => typeof v === 'string')) throw mixed(items);
    return items;
  }
  if (Array.isArray(first)) {
    if (!items.every((v) => Array.isArray(v) && v.length === first.length)) {
      throw new ValueError('DataLoader: samples are arrays of different lengths; cannot collate');
    }
    return first.map((_, k) => collate(items.map((v) => (v as unknown[])[k])));
  }
  if (
    first !== null &&
    typeof first === 'object' &&
    Object.getPrototypeOf(first) === Object.prototype
  ) {
    const keys = Object.keys(first);
    return Object.fromEntries(
      keys.map((k) => [k, collate(items.map((v) => (v as Record<string, unknown>)[k]))]),
    );
  }
  throw new ValueError(
    `DataLoader: cannot collate samples of type ${first === null ? 'null' : typeof first}; return tensors, numbers, strings, arrays or plain objects from get()`,
  );
}

function mixed(items: unknown[]): ValueError {
  const kinds = [...new Set(items.map((v) => (v instanceof Tensor ? 'Tensor' : typeof v)))];
  return new ValueError(
    `DataLoader: a batch mixes sample types (${kinds.join(', ')}); cannot collate`,
  );
}
