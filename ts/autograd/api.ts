// `nb.autograd`: PyTorch's torch.autograd functions.
export { grad, backward, type GradOptions, type BackwardOptions } from './backward.js';
export { gradcheck } from './gradcheck.js';
