// The worker protocol over a MessageChannel in Node (the same messages a Worker carries):
// the ready handshake in either order, results, transfers, errors and progress.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as nb from '../../ts/index.js';

beforeAll(async () => {
  await nb.init();
});

const ports: MessagePort[] = [];
afterEach(() => {
  ports.splice(0).forEach((p) => p.close());
});

function channel(): [MessagePort, MessagePort] {
  const { port1, port2 } = new MessageChannel();
  ports.push(port1, port2);
  return [port1, port2];
}

const handlers = {
  add: ({ a, b }: { a: number; b: number }) => a + b,
  async count(n: number, ctx: nb.worker.JobContext<number>) {
    for (let i = 1; i <= n; i++) ctx.report(i);
    return 'counted';
  },
  bytes(n: number) {
    const data = new Float32Array(n).fill(1.5);
    return nb.worker.transfer({ data }, [data.buffer]);
  },
  tensor: () => nb.ones([2]),
  fails() {
    throw new nb.ShapeError('matmul: shapes [2, 3] and [4, 5] do not align');
  },
};

describe('nb.worker over a MessageChannel', () => {
  it('runs jobs when the page connects first, and when the worker serves first', async () => {
    const [page, worker] = channel();
    const client = nb.worker.connect<typeof handlers>(page);
    const pending = client.run('add', { a: 2, b: 3 }); // before anything serves
    nb.worker.serve(handlers, worker);
    expect(await pending).toBe(5);
    expect((await client.ready).sort()).toEqual(['add', 'bytes', 'count', 'fails', 'tensor']);

    // Like a Worker whose messages nobody listened to yet: its first `ready` is gone.
    const [page2, worker2] = channel();
    page2.start();
    nb.worker.serve(handlers, worker2);
    await new Promise((r) => setTimeout(r, 20));
    const late = nb.worker.connect<typeof handlers>(page2);
    expect(await late.run('add', { a: 1, b: 1 })).toBe(2);
  });

  it('passes progress in order, then the result', async () => {
    const [page, worker] = channel();
    nb.worker.serve(handlers, worker);
    const seen: number[] = [];
    const out = await nb.worker.connect<typeof handlers>(page).run('count', 4, {
      onProgress: (i) => seen.push(i),
    });
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(out).toBe('counted');
  });

  it('moves transferred buffers instead of copying them', async () => {
    const [page, worker] = channel();
    nb.worker.serve(handlers, worker);
    const client = nb.worker.connect<typeof handlers>(page);
    const { data } = await client.run('bytes', 3);
    expect(Array.from(data)).toEqual([1.5, 1.5, 1.5]);
    const payload = new Float32Array(8);
    await expect(client.run('add', { a: 1, b: 2 }, { transfer: [payload.buffer] })).resolves.toBe(
      3,
    );
    expect(payload.byteLength).toBe(0);
  });

  it('turns errors into WorkerErrors that keep the class name', async () => {
    const [page, worker] = channel();
    nb.worker.serve(handlers, worker);
    const client = nb.worker.connect<typeof handlers>(page);
    const err = await client.run('fails').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(nb.worker.WorkerError);
    expect(err).toBeInstanceOf(nb.NablaError);
    expect(err).toMatchObject({
      remoteName: 'ShapeError',
      message: 'ShapeError in worker job "fails": matmul: shapes [2, 3] and [4, 5] do not align',
    });
    expect((err as nb.worker.WorkerError).remoteStack).toMatch(/fails/);
    await expect(client.run('tensor')).rejects.toThrow(
      'ValueError in worker job "tensor": serve: "tensor" returned a Tensor; return nb.worker.packTensor(t) instead',
    );
    // A payload that cannot be cloned fails on the page, before it is sent.
    await expect(
      client.run('add', { a: 1, b: () => 2 } as unknown as { a: number; b: number }),
    ).rejects.toThrow(/could not be cloned/);
    expect(await client.run('add', { a: 1, b: 2 })).toBe(3);
  });

  it('stops serving, and rejects pending runs on terminate', async () => {
    const [page, worker] = channel();
    const stop = nb.worker.serve(handlers, worker);
    const client = nb.worker.connect<typeof handlers>(page);
    await client.ready;
    stop();
    const pending = client.run('add', { a: 1, b: 1 });
    await new Promise((r) => setTimeout(r, 20));
    client.terminate();
    await expect(pending).rejects.toThrow('the worker was terminated');
  });

  it('packs tensors and weights into plain messages and back', () => {
    const t = nb.tensor([[1, 2, 3]], { dtype: 'int32' });
    const msg = nb.worker.packTensor(t);
    expect(msg).toEqual({ dtype: 'int32', shape: [1, 3], data: new Int32Array([1, 2, 3]) });
    expect(nb.worker.unpackTensor(msg).tolist()).toEqual([[1, 2, 3]]);
    expect(() => nb.worker.unpackTensor({ ...msg, shape: [2, 3] })).toThrow(
      'unpackTensor: shape [2, 3] needs 6 values, got 3',
    );
    expect(() => nb.worker.unpackTensor({ ...msg, dtype: 'float32' })).toThrow(
      'unpackTensor: float32 data must be a Float32Array',
    );
    const weights = nb.worker.packWeights({ w: nb.ones([2, 2]) }, { step: '1' });
    expect(weights.bytes).toBeInstanceOf(ArrayBuffer);
    const back = nb.worker.unpackWeights(weights);
    expect(nb.io.safetensorsMetadata(new Uint8Array(weights.bytes))).toEqual({ step: '1' });
    expect(Object.keys(back)).toEqual(['w']);
    expect(back.w.tolist()).toEqual([
      [1, 1],
      [1, 1],
    ]);
    expect(() =>
      nb.worker.unpackWeights({ bytes: new Uint8Array(4) } as unknown as nb.worker.WeightsMessage),
    ).toThrow(/^unpackWeights: expected/);
  });
});
