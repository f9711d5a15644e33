/**
 * rnnlm/advanced — the layers under LanguageModel, for custom training loops, tests and
 * experiments: the backend interface with the CPU backend (device buffers, tensors, ops queued
 * on a stream), Network (embedding -> RNN stack -> decoder over one flat parameter buffer in
 * PyTorch's state_dict layout), the optimizers, the seeded random numbers, and networkOf, the
 * network of a LanguageModel. The main entry point (rnnlm) is the documented model API.
 */
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
export { networkOf } from './model';
