/**
 * rnnlm — recurrent language models for Node.js: the documented API (README, "API").
 *
 * Layers (docs/ARCHITECTURE.md): this TypeScript layer composes the model and training from the
 * ops of one backend interface (lib/backend/types.ts), implemented natively by the CPU backend
 * (native/cpu) and the CUDA backend (native/cuda). Those layers — the backends, Network,
 * Optimizer — are the advanced entry point, rnnlm/advanced (lib/advanced.ts).
 */
export { RnnlmError, type RnnlmErrorCode } from './errors';
export {
  LanguageModel,
  type CreateOptions,
  type LoadOptions,
  type SaveOptions,
  type SummaryOptions,
  type FitOptions,
  type EpochLog,
  type LrSchedule,
  type OptimizerOptions,
  type EvaluateOptions,
  type Evaluation,
  type PredictOptions,
  type Prediction,
  type GenerateOptions,
  type GeneratedToken,
  type Generation,
  type TopToken,
  type RuntimeStats,
  type TokenControls,
  type Score,
  type ScoreOptions,
  type Session,
  type SessionGenerateOptions,
  type SessionOptions,
  type SessionScoreOptions,
  type BeamSearchOptions,
  type Beam,
  type DataMode,
  type TextInput,
  type TokenIds,
  type ModelConfig,
  type SoftmaxOptions,
  type SoftmaxConfig,
  type Cell,
  type DeviceOption,
  type Precision,
  type CacheOptions,
  type CacheTuning,
  type Regularization,
  type TuneCacheOptions,
} from './model';
export {
  WordTokenizer,
  CharTokenizer,
  tokenizerFromJSON,
  type Tokenizer,
  type TokenizerJSON,
  type WordTokenizerOptions,
  type CharTokenizerOptions,
  type DecodeOptions,
} from './tokenizers';
