// Algorithm choices a user can switch at run time, like PyTorch's `torch.backends.*` flags.
// Each defaults to the choice whose results follow PyTorch's CPU kernels most closely.
export const backends = {
  conv: {
    /**
     * Run 3×3 stride-1, ungrouped convolutions with 16 or more channels on small planes
     * (CIFAR- or MNIST-sized) by Winograd's F(2×2, 3×3): forward and both gradients take
     * 2.25x fewer multiply-adds (a ResNet BasicBlock step at 64 channels, 32×32: 164 → 109 ms).
     * The results stay within 1e-5 of the direct sum but round differently, so a long training
     * run drifts from PyTorch's in the last places (a 30-step CNN trajectory moved 9e-4).
     * Off by default.
     */
    winograd: false,
  },
};
