// The example's CNN, its data augmentation and its optimizer, in one module that train.mjs and
// the PyTorch trajectory test (test/cnn-transfer.test.ts) both import.
//
//   features    three conv-bn-relu blocks (3x3 convolutions without bias: BatchNorm's shift
//               replaces it), each followed by 2x2 max pooling: 28 → 14 → 7 → 3
//   classifier  flatten, dropout, Linear(64·3·3, 64), ReLU, dropout, Linear(64, classes)
//
// scripts/fixtures/make_cnn_transfer_fixtures.py builds the same network in torch.nn; the
// state-dict names (`features.0.weight`, `features.1.running_mean`, `classifier.2.weight`, …)
// are PyTorch's, so the saved safetensors load into it with `load_state_dict`.
import * as nb from 'nabla';

const { nn } = nb;

export const WIDTHS = [16, 32, 64];
export const HIDDEN = 64;

/** One conv-bn-relu-pool block: Conv2d (no bias), BatchNorm2d, ReLU, MaxPool2d(2). */
function block(cin, cout) {
  return [
    new nn.Conv2d(cin, cout, 3, { padding: 1, bias: false }),
    new nn.BatchNorm2d(cout),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
  ];
}

/** The convolutional feature extractor: [N, 1, 28, 28] → [N, 64, 3, 3]. */
export function makeFeatures(widths = WIDTHS) {
  const layers = [];
  let cin = 1;
  for (const w of widths) {
    layers.push(...block(cin, w));
    cin = w;
  }
  return new nn.Sequential(...layers);
}

/** A classifier head on the features: [N, 64, 3, 3] → [N, classes] logits. */
export function makeHead(classes, { widths = WIDTHS, hidden = HIDDEN, dropout = 0.25 } = {}) {
  const c = widths[widths.length - 1];
  return new nn.Sequential(
    new nn.Flatten(),
    new nn.Dropout(dropout),
    new nn.Linear(c * 3 * 3, hidden),
    new nn.ReLU(),
    new nn.Dropout(dropout),
    new nn.Linear(hidden, classes),
  );
}

/** `features` then `classifier`, as torchvision's VGG/AlexNet name them. */
export class SmallCnn extends nn.Module {
  constructor({ classes = 10, widths = WIDTHS, hidden = HIDDEN, dropout = 0.25 } = {}) {
    super();
    this.features = makeFeatures(widths);
    this.classifier = makeHead(classes, { widths, hidden, dropout });
  }

  forward(x) {
    return this.classifier.forward(this.features.forward(x));
  }
}

/**
 * Adam with two parameter groups: the trainable feature parameters at `featuresLr`, the
 * trainable head parameters at `lr` (full fine-tuning: features learn 10x slower than the new
 * head). Frozen parameters are left out, so the optimizer keeps no state for them.
 */
export function makeOptimizer(model, { lr, featuresLr = lr }) {
  const trainable = (m) => m.parameters().filter((p) => p.requiresGrad);
  const groups = [
    { params: trainable(model.features), lr: featuresLr },
    { params: trainable(model.classifier), lr },
  ].filter((g) => g.params.length > 0);
  return new nb.optim.Adam(groups, { lr });
}

/**
 * Data augmentation on a batch of images [N, 28, 28] (or [N, 1, 28, 28]) as tensor ops: each
 * image is shifted by a random (dy, dx) in [-shift, shift]² (zero padding, then a crop) and,
 * with `flip`, mirrored left-right with probability 1/2. Both are one `gather` over the padded,
 * flattened batch with per-image indices, so the whole batch costs two ops. `draw()` returns
 * uniform numbers in [0, 1) (the caller's seeded generator). Returns [N, 1, 28, 28].
 */
export function augment(x, { shift = 2, flip = false, draw }) {
  const n = x.shape[0];
  const H = 28;
  const W = 28;
  const P = H + 2 * shift;
  const Q = W + 2 * shift;
  const index = new Int32Array(n * H * W);
  for (let i = 0; i < n; i++) {
    const dy = Math.floor(draw() * (2 * shift + 1));
    const dx = Math.floor(draw() * (2 * shift + 1));
    const mirror = flip && draw() < 0.5;
    for (let r = 0; r < H; r++) {
      for (let c = 0; c < W; c++) {
        const sc = mirror ? W - 1 - c : c;
        index[(i * H + r) * W + c] = (r + dy) * Q + sc + dx;
      }
    }
  }
  return nb.tidy(() => {
    const padded = nn.functional.pad(x.reshape([n, H, W]), [shift, shift, shift, shift]);
    const idx = nb.tensor(index, { shape: [n, H * W], dtype: 'int32' });
    return nb.gather(padded.reshape([n, P * Q]), 1, idx).reshape([n, 1, H, W]);
  });
}

/** mulberry32: a small seeded generator of uniform numbers in [0, 1). */
export function rng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
