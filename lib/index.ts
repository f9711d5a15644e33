/**
 * rnnlm — recurrent language models for Node.js.
 *
 * Layers (DESIGN.md): this TypeScript layer composes the model and training from the ops
 * of one backend interface (lib/backend/types.ts), implemented natively by the CPU backend
 * (native/cpu) and the CUDA backend (native/cuda).
 */
export { RnnlmError, type RnnlmErrorCode } from './errors';
export { cpuBackend } from './backend/cpu';
export { tensor, numel } from './backend/types';
export type {
  Backend,
  Cell,
  DType,
  DeviceBuffer,
  RnnDescriptor,
  RnnOptions,
  RnnParamRef,
  Stream,
  Tensor,
  AdamArgs,
  SgdArgs,
} from './backend/types';
export { Network, type NetworkConfig, type Batch, type ParamEntry } from './nn/network';
export { Optimizer, OPTIMIZER_DEFAULTS, type OptimizerOptions } from './nn/optimizer';
export { Random } from './util/random';
export { LanguageModel, type CreateOptions, type GenerateOptions, type Prediction, type Beam, type DataMode, type TextInput, type TokenIds, type ModelConfig, type EvaluateOptions, type Evaluation } from './model';
export type { FitOptions, EpochLog, LrSchedule } from './train';
export { WordTokenizer, CharTokenizer, tokenizerFromJSON, type Tokenizer } from './tokenizers';
