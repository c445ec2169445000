// `nb.nn`: modules, layers, activations, losses, initialisers and the functional forms.
export {
  Module,
  Parameter,
  isParameter,
  pyFloat,
  pyBool,
  pyTuple,
  type LoadOptions,
  type StateDictOptions,
  type LoadResult,
} from './module.js';
export * from './layers.js';
export * from './activations.js';
export * from './losses.js';
export * from './containers.js';
export * from './normalization.js';
export * from './conv.js';
export * from './pooling.js';
export * from './batchnorm.js';
export * from './resnet.js';
export { Dropout2d, Upsample, type UpsampleOptions } from './spatial.js';
export { summary, type SummaryInfo, type SummaryRow, type SummaryOptions } from './summary.js';
export * as init from './init.js';
export * as functional from './functional.js';
export * as utils from './utils.js';
// Recurrent modules and cells (the packing utilities are nn.utils.rnn).
export * from './rnn/index.js';
export { PackedSequence } from './rnn/packing.js';
export * from './transformer/index.js';
// GPT-2 (Hugging Face names): GPT2Config, GPT2Model, GPT2LMHeadModel, Conv1D.
export * as hf from './hf.js';
export * from './gpt2/index.js';
// BERT (Hugging Face names): BertConfig, BertModel, BertForMaskedLM, BertForSequenceClassification;
// nn.bert.maskTokens draws MLM inputs.
export * from './bert/index.js';
// Next-token selection: temperature, top-k, top-p, multinomial or greedy.
export { filterLogits, sampleLogits, type SamplingOptions } from './sampling.js';
// Fine-tuning: hooks' handle and types, freezing by name, LoRA and bottleneck adapters.
export {
  RemovableHandle,
  type ForwardHook,
  type ForwardPreHook,
  type BackwardHook,
} from './hooks.js';
export { isAdapterParameter } from './module.js';
export { freeze, unfreeze, type NamePattern } from './freeze.js';
export * as lora from './lora/index.js';
export * as adapters from './adapters.js';
