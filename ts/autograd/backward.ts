// Reverse-mode accumulation over the recorded graph. The walk is iterative (a 10,000-op chain
// cannot overflow the stack), runs with grad mode off, and frees each intermediate gradient as
// soon as it has been pushed to the op's inputs. Leaf gradients are owned by their tensors.
import { ShapeError, ValueError, fmt } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Storage } from '../tensor/storage.js';
import { keep } from '../tensor/scope.js';
import { sameShape } from '../tensor/shape.js';
import { noGrad } from './node.js';
import { addInPlace, clone } from '../ops/copy.js';
import { onesLike } from '../ops/creation.js';

/** Tensors reachable from `root`, each after everything it depends on. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t._node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i];
      if (next && !visited.has(next)) {
        visited.add(next);
        stack.push([next, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  return order;
}

export function backward(root: Tensor, grad?: Tensor): void {
  if (!root.requiresGrad) {
    throw new ValueError(
      `backward: tensor ${fmt(root.shape)} does not require grad and has no grad_fn`,
    );
  }
  if (grad === undefined && root.size !== 1) {
    throw new ValueError(
      `backward: grad can be implicitly created only for one-element outputs, got shape ${fmt(root.shape)}`,
    );
  }
  if (grad !== undefined && !sameShape(grad.shape, root.shape)) {
    throw new ShapeError(
      `backward: grad shape ${fmt(grad.shape)} does not match output shape ${fmt(root.shape)}`,
    );
  }
  noGrad(() => walk(root, grad === undefined ? onesLike(root) : clone(grad)));
}

function walk(root: Tensor, seed: Tensor): void {
  const order = topoOrder(root);
  const grads = new Map<Tensor, Tensor>([[root, seed]]);
  // Storages that some pending gradient holds: a second holder gets a copy, so in-place
  // accumulation can never change another tensor's gradient.
  const held = new Set<Storage>([seed.storage()]);

  /** Adds `g` to `t`'s pending gradient; true when `g` itself was stored (not copied). */
  const push = (t: Tensor, g: Tensor, op: string): boolean => {
    if (!sameShape(g.shape, t.shape)) {
      throw new ShapeError(`backward of ${op}: gradient ${fmt(g.shape)} for input ${fmt(t.shape)}`);
    }
    const prev = grads.get(t);
    if (prev) {
      addInPlace(prev, g);
      return false;
    }
    const own = held.has(g.storage()) ? clone(g) : g;
    held.add(own.storage());
    grads.set(t, own);
    return own === g;
  };

  for (let i = order.length - 1; i >= 0; i--) {
    const t = order[i];
    const g = grads.get(t);
    if (!g) continue;
    grads.delete(t);
    held.delete(g.storage());
    const node = t._node;
    if (node === null) {
      accumulateLeaf(t, g);
      continue;
    }
    const results = node.backward(g);
    const stored = new Set<Tensor>();
    node.inputs.forEach((input, k) => {
      const gi = results[k];
      if (input && gi && push(input, gi, node.name)) stored.add(gi);
    });
    // The op's gradient and whatever its backward made are done unless stored above.
    for (const x of new Set([g, ...results])) if (x && !stored.has(x)) x.dispose();
  }
}

/** Moves `g` into `t.grad`, or adds it in place to an existing gradient. */
function accumulateLeaf(t: Tensor, g: Tensor): void {
  if (!t.requiresGrad) {
    g.dispose();
    return;
  }
  if (t.grad && !t.grad.isDisposed) {
    addInPlace(t.grad, g);
    g.dispose();
  } else {
    t.grad = keep(g);
  }
}
