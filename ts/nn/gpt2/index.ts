// GPT-2 with Hugging Face's module and parameter names (`nb.nn.GPT2LMHeadModel`, …).
export { GPT2Config, type GPT2ConfigOptions, type GPT2Activation } from './config.js';
export {
  Conv1D,
  GPT2Attention,
  GPT2MLP,
  GPT2Block,
  GPT2Model,
  GPT2LMHeadModel,
  lmLoss,
  type LayerPast,
  type GPT2ForwardOptions,
  type GPT2ModelOutput,
  type GPT2LMForwardOptions,
  type GPT2LMOutput,
} from './model.js';
export { generate, type GenerateOptions, type CausalLM } from './generate.js';
