// torchvision's ResNet with BasicBlocks (resnet18/34), built from nabla's layers with
// torchvision's module names, so its state dicts load both ways: conv1, bn1, layer1.0.conv1,
// layer2.0.downsample.0/1, fc, and each BatchNorm's running statistics. `smallInput` swaps the
// ImageNet stem (7×7 stride-2 conv, 3×3 max pool) for a 3×3 stride-1 conv and no pooling, the
// usual change for 28×28 or 32×32 images; the names stay the same.
import { ValueError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { Module } from './module.js';
import { Identity } from './containers.js';
import { Linear, Sequential } from './layers.js';
import { ReLU } from './activations.js';
import { Conv2d } from './conv.js';
import { BatchNorm2d } from './batchnorm.js';
import { AdaptiveAvgPool2d, MaxPool2d } from './pooling.js';
import * as init from './init.js';

const conv3x3 = (inPlanes: number, outPlanes: number, stride = 1) =>
  new Conv2d(inPlanes, outPlanes, 3, { stride, padding: 1, bias: false });

/** torchvision's BasicBlock: conv-bn-relu-conv-bn, plus the (downsampled) input, then relu. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  conv2: Conv2d;
  bn2: BatchNorm2d;
  /** Projects the input when the shape changes (stride or width); null otherwise. */
  downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, opts: { stride?: number } = {}) {
    super();
    const stride = opts.stride ?? 1;
    this.conv1 = conv3x3(inPlanes, planes, stride);
    this.bn1 = new BatchNorm2d(planes);
    this.conv2 = conv3x3(planes, planes);
    this.bn2 = new BatchNorm2d(planes);
    this.downsample =
      stride !== 1 || inPlanes !== planes
        ? new Sequential(
            new Conv2d(inPlanes, planes, 1, { stride, bias: false }),
            new BatchNorm2d(planes),
          )
        : null;
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(
      this.conv2.forward(this.relu.forward(this.bn1.forward(this.conv1.forward(x)))),
    );
    const identity = this.downsample ? (this.downsample.forward(x) as Tensor) : x;
    return this.relu.forward(out.add(identity));
  }
}

export interface ResNetOptions {
  /** BasicBlocks per stage; resnet18 is [2, 2, 2, 2]. */
  layers: readonly number[];
  /** Default 1000. */
  numClasses?: number;
  /** Input channels; default 3. */
  inChannels?: number;
  /** Width of the first stage, doubled at each later one; default 64. */
  baseWidth?: number;
  /** 3×3 stride-1 stem without max pooling (small images); default false. */
  smallInput?: boolean;
  /** Start every block's last BatchNorm at weight 0, so blocks begin as identities. */
  zeroInitResidual?: boolean;
}

/** torchvision.models.ResNet with BasicBlocks and torchvision's initialisation. */
export class ResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu = new ReLU();
  maxpool: MaxPool2d | Identity;
  layer1: Sequential;
  layer2: Sequential | null = null;
  layer3: Sequential | null = null;
  layer4: Sequential | null = null;
  avgpool = new AdaptiveAvgPool2d([1, 1]);
  fc: Linear;

  constructor(opts: ResNetOptions) {
    super();
    const layers = opts.layers;
    if (
      layers.length < 1 ||
      layers.length > 4 ||
      !layers.every((n) => Number.isInteger(n) && n >= 1)
    ) {
      throw new ValueError(
        `ResNet: layers must be 1 to 4 positive block counts, got ${JSON.stringify(layers)}`,
      );
    }
    const width = opts.baseWidth ?? 64;
    const inChannels = opts.inChannels ?? 3;
    const small = opts.smallInput ?? false;
    this.conv1 = small
      ? new Conv2d(inChannels, width, 3, { stride: 1, padding: 1, bias: false })
      : new Conv2d(inChannels, width, 7, { stride: 2, padding: 3, bias: false });
    this.bn1 = new BatchNorm2d(width);
    this.maxpool = small ? new Identity() : new MaxPool2d(3, { stride: 2, padding: 1 });
    let inPlanes = width;
    const stages = layers.map((blocks, i) => {
      const planes = width * 2 ** i;
      const stage: BasicBlock[] = [];
      for (let b = 0; b < blocks; b++) {
        stage.push(new BasicBlock(inPlanes, planes, { stride: b === 0 && i > 0 ? 2 : 1 }));
        inPlanes = planes;
      }
      return new Sequential(...stage);
    });
    this.layer1 = stages[0];
    this.layer2 = stages[1] ?? null;
    this.layer3 = stages[2] ?? null;
    this.layer4 = stages[3] ?? null;
    this.fc = new Linear(inPlanes, opts.numClasses ?? 1000);
    for (const m of this.modules()) {
      if (m instanceof Conv2d)
        init.kaimingNormal_(m.weight, { mode: 'fanOut', nonlinearity: 'relu' });
    }
    if (opts.zeroInitResidual) {
      for (const m of this.modules()) if (m instanceof BasicBlock) init.zeros_(m.bn2.weight!);
    }
  }

  /** Everything up to the pooled features [N, C] (what a new head reads). */
  features(x: Tensor): Tensor {
    let h = this.maxpool.forward(
      this.relu.forward(this.bn1.forward(this.conv1.forward(x))),
    ) as Tensor;
    for (const stage of [this.layer1, this.layer2, this.layer3, this.layer4]) {
      if (stage) h = stage.forward(h) as Tensor;
    }
    return this.avgpool.forward(h).flatten(1);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }
}

/** torchvision's resnet18 layout ([2, 2, 2, 2] BasicBlocks), untrained. */
export function resnet18(opts: Omit<ResNetOptions, 'layers'> = {}): ResNet {
  return new ResNet({ ...opts, layers: [2, 2, 2, 2] });
}

/** torchvision's resnet34 layout ([3, 4, 6, 3] BasicBlocks), untrained. */
export function resnet34(opts: Omit<ResNetOptions, 'layers'> = {}): ResNet {
  return new ResNet({ ...opts, layers: [3, 4, 6, 3] });
}
