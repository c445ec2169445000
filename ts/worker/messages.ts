// Tensors and weights as plain messages (a Tensor is a handle into one thread's wasm memory),
// and ready-made handlers for a model living in the worker: predict, getWeights, setWeights.
import { DTypeError, ShapeError, ValueError, fmt } from '../errors.js';
import type { Module } from '../nn/module.js';
import { readTensors, saveSafetensors } from '../io/safetensors.js';
import { tensor } from '../ops/creation.js';
import { predict } from '../train/fit.js';
import type { Tensor } from '../tensor/tensor.js';
import { transfer, type Transfer } from './protocol.js';

/** A tensor's contents; post it with its buffer in the transfer list to move it. */
export interface TensorMessage {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

/** A state dict as safetensors bytes, an ArrayBuffer that can be transferred. */
export interface WeightsMessage {
  format: 'safetensors';
  bytes: ArrayBuffer;
}

/** Copies `t` out of wasm memory into a message. */
export function packTensor(t: Tensor): TensorMessage {
  return { dtype: t.dtype, shape: [...t.shape], data: t.toArray() as Float32Array | Int32Array };
}

/** A fresh tensor (the caller owns it) from a message, checked against its shape and dtype. */
export function unpackTensor(m: TensorMessage): Tensor {
  const expected = m?.dtype === 'int32' ? Int32Array : Float32Array;
  if (m?.dtype !== 'float32' && m?.dtype !== 'int32') {
    throw new DTypeError(
      `unpackTensor: dtype must be 'float32' or 'int32', got ${String(m?.dtype)}`,
    );
  }
  if (!(m.data instanceof expected)) {
    throw new DTypeError(`unpackTensor: ${m.dtype} data must be a ${expected.name}`);
  }
  const size = Array.isArray(m.shape) ? m.shape.reduce((a, b) => a * b, 1) : NaN;
  if (size !== m.data.length) {
    throw new ShapeError(
      `unpackTensor: shape ${Array.isArray(m.shape) ? fmt(m.shape) : String(m.shape)} needs ${size} values, got ${m.data.length}`,
    );
  }
  return tensor(m.data, { shape: m.shape, dtype: m.dtype });
}

/** Serialises a state dict (see `saveSafetensors`) into a transferable message. */
export function packWeights(
  stateDict: Record<string, Tensor>,
  metadata?: Record<string, string>,
): WeightsMessage {
  return {
    format: 'safetensors',
    bytes: saveSafetensors(stateDict, metadata).buffer as ArrayBuffer,
  };
}

/**
 * Parses a weights message into a state dict; the tensors belong to the caller. Its metadata
 * is `nb.io.safetensorsMetadata(new Uint8Array(m.bytes))`.
 */
export function unpackWeights(m: WeightsMessage): Record<string, Tensor> {
  if (m?.format !== 'safetensors' || !(m.bytes instanceof ArrayBuffer)) {
    throw new ValueError(
      "unpackWeights: expected { format: 'safetensors', bytes: ArrayBuffer } (from packWeights)",
    );
  }
  return readTensors(new Uint8Array(m.bytes), 'unpackWeights');
}

/**
 * Handlers serving a model that lives in the worker (pass a function when the model is made
 * or replaced later, e.g. by a training job). Spread them into `serve`:
 * `nb.worker.serve({ ...nb.worker.modelHandlers(() => model), train })`.
 */
export function modelHandlers(model: Module | (() => Module | null)) {
  const get = (op: string): Module => {
    const m = typeof model === 'function' ? model() : model;
    if (!m) throw new ValueError(`${op}: the worker has no model yet`);
    return m;
  };
  return {
    /** The model's output (eval mode, no gradients) for one input tensor. */
    predict(input: TensorMessage): Transfer<TensorMessage> {
      const x = unpackTensor(input);
      try {
        const out = predict(get('predict'), x);
        const msg = packTensor(out);
        out.dispose();
        return transfer(msg, [msg.data.buffer]);
      } finally {
        x.dispose();
      }
    },
    /** The model's state dict as safetensors bytes. */
    getWeights(): Transfer<WeightsMessage> {
      const sd = get('getWeights').stateDict();
      try {
        const msg = packWeights(sd);
        return transfer(msg, [msg.bytes]);
      } finally {
        Object.values(sd).forEach((t) => t.dispose());
      }
    },
    /** Loads weights into the model (strictly: the same names and shapes). */
    setWeights(weights: WeightsMessage): void {
      const tensors = unpackWeights(weights);
      try {
        get('setWeights').loadStateDict(tensors);
      } finally {
        Object.values(tensors).forEach((t) => t.dispose());
      }
    },
  };
}
