// nb.metrics: classification scores with scikit-learn's definitions.
export {
  accuracy,
  confusionMatrix,
  precisionRecallF1,
  type Average,
  type PRFOptions,
  type PerClassScores,
  type AveragedScores,
} from './classification.js';
export { classificationReport, type ReportOptions } from './report.js';
