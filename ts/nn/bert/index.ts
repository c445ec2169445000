// BERT with Hugging Face's module and parameter names (`nb.nn.BertForMaskedLM`, …).
export { BertConfig, type BertConfigOptions, type BertActivation } from './config.js';
export {
  BertEmbeddings,
  BertSelfAttention,
  BertSelfOutput,
  BertOutput,
  BertAttention,
  BertIntermediate,
  BertLayer,
  BertEncoder,
  BertPooler,
  BertModel,
  BertPredictionHeadTransform,
  BertLMPredictionHead,
  BertOnlyMLMHead,
  BertForMaskedLM,
  BertForSequenceClassification,
  mlmLoss,
  classificationLoss,
  type BertForwardOptions,
  type BertModelOutput,
  type BertModelOptions,
  type BertLabelsOptions,
  type BertHeadOutput,
} from './model.js';
export * as bert from './masking.js';
