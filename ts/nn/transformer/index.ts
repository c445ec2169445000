// Attention and transformer layers (`nb.nn.MultiheadAttention`, ...) and positional encodings.
export {
  MultiheadAttention,
  NonDynamicallyQuantizableLinear,
  causalMask,
  type MultiheadAttentionOptions,
  type MultiheadAttentionForwardOptions,
} from './attention.js';
export {
  TransformerEncoderLayer,
  TransformerEncoder,
  type TransformerActivation,
  type TransformerLayerOptions,
  type EncoderForwardOptions,
  type TransformerEncoderForwardOptions,
  type EncoderOptions,
} from './encoder.js';
export {
  TransformerDecoderLayer,
  TransformerDecoder,
  type DecoderForwardOptions,
} from './decoder.js';
export {
  SinusoidalPositionalEncoding,
  LearnedPositionalEncoding,
  sinusoidalPositionalEncoding,
  rotaryEmbedding,
  applyRotaryEmbedding,
  type PositionalOptions,
  type RotaryTables,
} from './positional.js';
