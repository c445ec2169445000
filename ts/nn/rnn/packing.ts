// Variable-length batches, as torch.nn.utils.rnn: a PackedSequence stores the real timesteps of
// every sequence time-major with the longest sequences first, so step t of a recurrence reads
// one contiguous block of `batchSizes[t]` rows. Packing and unpacking are single indexSelects,
// so gradients flow back to the padded input (padding positions get zero).
import { ShapeError, ValueError, fmt } from '../../errors.js';
import { Tensor } from '../../tensor/tensor.js';
import { tensor, full } from '../../ops/creation.js';
import { cat, stack } from '../../ops/shape.js';
import { indexSelect } from '../../ops/indexing.js';

/**
 * PyTorch's PackedSequence. `data` is [sum(batchSizes), *features]; `batchSizes` is a plain
 * array of numbers (torch: an int64 CPU tensor), non-increasing; `sortedIndices` /
 * `unsortedIndices` are int32 index tensors (null when the batch was already sorted):
 * `sortedIndices[k]` is the original batch position of the k-th longest sequence.
 */
export class PackedSequence {
  constructor(
    readonly data: Tensor,
    readonly batchSizes: readonly number[],
    readonly sortedIndices: Tensor | null = null,
    readonly unsortedIndices: Tensor | null = null,
  ) {
    batchSizes.forEach((n, t) => {
      if (!Number.isInteger(n) || n < 1 || (t > 0 && n > batchSizes[t - 1])) {
        throw new ValueError(
          `PackedSequence: batchSizes [${batchSizes.join(', ')}] must be positive and non-increasing`,
        );
      }
    });
    const total = batchSizes.reduce((a, b) => a + b, 0);
    if (data.ndim < 1 || data.shape[0] !== total) {
      throw new ShapeError(
        `PackedSequence: data ${fmt(data.shape)} must have sum(batchSizes) = ${total} rows`,
      );
    }
    if ((sortedIndices === null) !== (unsortedIndices === null)) {
      throw new ValueError(
        'PackedSequence: give both sortedIndices and unsortedIndices, or neither',
      );
    }
  }

  /** The same sequences with `data` replaced (e.g. a recurrent module's output). */
  withData(data: Tensor): PackedSequence {
    return new PackedSequence(data, this.batchSizes, this.sortedIndices, this.unsortedIndices);
  }

  /** Each sequence's length, in the original batch order. */
  lengths(): number[] {
    const b = this.batchSizes[0] ?? 0;
    const sorted = new Array<number>(b).fill(0);
    for (const n of this.batchSizes) for (let k = 0; k < n; k++) sorted[k]++;
    if (!this.sortedIndices) return sorted;
    const order = this.sortedIndices.toArray();
    const out = new Array<number>(b);
    for (let k = 0; k < b; k++) out[order[k]] = sorted[k];
    return out;
  }
}

function int32(values: ArrayLike<number>): Tensor {
  return tensor(Int32Array.from(values), { dtype: 'int32' });
}

export interface PadSequenceOptions {
  /** Output [batch, time, *] instead of [time, batch, *] (default false). */
  batchFirst?: boolean;
  /** Value of the padding positions (default 0). */
  paddingValue?: number;
}

/** Stacks sequences of shape [L_i, *] into [maxL, batch, *] (or [batch, maxL, *]), padded. */
export function padSequence(sequences: readonly Tensor[], opts: PadSequenceOptions = {}): Tensor {
  if (sequences.length === 0) throw new ValueError('padSequence: expected at least one sequence');
  const rest = sequences[0].shape.slice(1);
  for (const s of sequences) {
    if (s.ndim < 1 || s.ndim !== rest.length + 1 || s.shape.slice(1).some((d, i) => d !== rest[i]))
      throw new ShapeError(
        `padSequence: sequences must share their trailing dims, got ${sequences.map((t) => fmt(t.shape)).join(', ')}`,
      );
  }
  const maxLen = Math.max(...sequences.map((s) => s.shape[0]));
  const pad = opts.paddingValue ?? 0;
  const padded = sequences.map((s) =>
    s.shape[0] === maxLen
      ? s
      : cat([s, full([maxLen - s.shape[0], ...rest], pad, { dtype: s.dtype })], 0),
  );
  return stack(padded, opts.batchFirst ? 0 : 1);
}

export interface PackOptions {
  /** The input is [batch, time, *] (default false: [time, batch, *]). */
  batchFirst?: boolean;
  /** Require lengths sorted longest first (default true); false sorts them here. */
  enforceSorted?: boolean;
}

/** Packs a padded batch given each sequence's length (numbers or an int32 tensor). */
export function packPaddedSequence(
  input: Tensor,
  lengths: readonly number[] | Tensor,
  opts: PackOptions = {},
): PackedSequence {
  const op = 'packPaddedSequence';
  const lens = lengths instanceof Tensor ? [...lengths.toArray()] : [...lengths];
  const batchFirst = opts.batchFirst ?? false;
  const enforceSorted = opts.enforceSorted ?? true;
  if (input.ndim < 2)
    throw new ShapeError(`${op}: input must be at least 2-D, got ${fmt(input.shape)}`);
  const T = input.shape[batchFirst ? 1 : 0];
  const B = input.shape[batchFirst ? 0 : 1];
  if (lens.length !== B) {
    throw new ShapeError(
      `${op}: ${lens.length} lengths for a batch of ${B} (input ${fmt(input.shape)}, batchFirst=${batchFirst})`,
    );
  }
  lens.forEach((l, i) => {
    if (!Number.isInteger(l) || l < 1 || l > T)
      throw new ValueError(`${op}: lengths[${i}] = ${l} must be an integer in [1, ${T}]`);
  });
  let order: number[] | null = null;
  const isSorted = lens.every((l, i) => i === 0 || lens[i - 1] >= l);
  if (!isSorted) {
    if (enforceSorted) {
      throw new ValueError(
        `${op}: lengths [${lens.join(', ')}] are not sorted in decreasing order; sort the batch or pass enforceSorted: false`,
      );
    }
    // Stable, longest first.
    order = lens.map((_, i) => i).sort((a, b) => lens[b] - lens[a] || a - b);
  }
  const sorted = order ? order.map((i) => lens[i]) : lens;
  const batchSizes: number[] = [];
  for (let t = 0; t < sorted[0]; t++) batchSizes.push(sorted.filter((l) => l > t).length);
  // Row (t, b) of the time-major input is row t*B + b of its flattening (batch-first: b*T + t).
  const rows: number[] = [];
  batchSizes.forEach((n, t) => {
    for (let k = 0; k < n; k++) {
      const b = order ? order[k] : k;
      rows.push(batchFirst ? b * T + t : t * B + b);
    }
  });
  const flat = input.reshape([T * B, ...input.shape.slice(2)]);
  const data = indexSelect(flat, 0, int32(rows));
  if (!order) return new PackedSequence(data, batchSizes);
  const inverse = new Array<number>(B);
  order.forEach((b, k) => (inverse[b] = k));
  return new PackedSequence(data, batchSizes, int32(order), int32(inverse));
}

export interface PadPackedOptions {
  /** Output [batch, time, *] (default false: [time, batch, *]). */
  batchFirst?: boolean;
  /** Value of the padding positions (default 0). */
  paddingValue?: number;
  /** Pad to this many timesteps (at least the longest sequence) instead of the longest. */
  totalLength?: number | null;
}

/**
 * Unpacks to a padded batch in the original order; returns `[padded, lengths]` with lengths
 * an int32 tensor (torch: int64).
 */
export function padPackedSequence(
  sequence: PackedSequence,
  opts: PadPackedOptions = {},
): [Tensor, Tensor] {
  const op = 'padPackedSequence';
  const { data, batchSizes } = sequence;
  const B = batchSizes[0] ?? 0;
  const maxLen = batchSizes.length;
  const T = opts.totalLength ?? maxLen;
  if (!Number.isInteger(T) || T < maxLen) {
    throw new ValueError(
      `${op}: totalLength ${T} is shorter than the longest sequence (${maxLen} steps)`,
    );
  }
  const order = sequence.sortedIndices ? [...sequence.sortedIndices.toArray()] : null;
  const N = data.shape[0];
  // Every padded position reads a packed row, or the appended padding row N.
  const rows = new Array<number>(T * B).fill(N);
  let offset = 0;
  batchSizes.forEach((n, t) => {
    for (let k = 0; k < n; k++) {
      const b = order ? order[k] : k;
      rows[opts.batchFirst ? b * T + t : t * B + b] = offset + k;
    }
    offset += n;
  });
  const rest = data.shape.slice(1);
  const source = cat([data, full([1, ...rest], opts.paddingValue ?? 0, { dtype: data.dtype })], 0);
  const flat = indexSelect(source, 0, int32(rows));
  const padded = flat.reshape(opts.batchFirst ? [B, T, ...rest] : [T, B, ...rest]);
  return [padded, int32(sequence.lengths())];
}

/** Pads then packs a list of [L_i, *] sequences (PyTorch's pack_sequence). */
export function packSequence(
  sequences: readonly Tensor[],
  opts: { enforceSorted?: boolean } = {},
): PackedSequence {
  const lengths = sequences.map((s) => s.shape[0] ?? 0);
  return packPaddedSequence(padSequence(sequences), lengths, opts);
}
