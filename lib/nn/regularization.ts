/**
 * AWD-LSTM's regularization options (Merity et al. 2017) and the rates a network applies: the one
 * list of them, for create's options, the model config (checkpoints) and the network config.
 */

/**
 * AWD-LSTM's regularization (Merity et al. 2017), each off by default; the paper's values for a
 * 3-layer word model in brackets. Rates are in [0, 0.95] and apply in training only.
 */
export interface Regularization {
  /** Dropout on the embedding output (0.65), between layers (0.3), on the last layer's output (0.4); each defaults to `dropout`. */
  dropoutInput?: number;
  dropoutHidden?: number;
  dropoutOutput?: number;
  /** Whole words dropped from the embedding output, one mask per token id per batch, rescaled (0.1). Default 0. */
  dropoutEmbedding?: number;
  /** Each dropout mask drawn once per sequence and shared by its time steps (variational dropout; true). Between layers on the CPU only. Default false. */
  lockedDropout?: boolean;
  /** DropConnect on every weight_hh: a new mask per batch, the raw weights updated (0.5). Default 0. */
  weightDrop?: number;
}

/** The config's optional rates, each in [0, 0.95] (CONFIG_LIMITS.dropout); lockedDropout is the boolean beside them. */
export const REGULARIZATION_RATES = ['dropoutEmbedding', 'dropoutInput', 'dropoutHidden', 'dropoutOutput', 'weightDrop'] as const;

/** The rates a network applies: each place's dropout (defaulting to `dropout`), words, weights, locked. */
export interface Rates {
  input: number;
  hidden: number;
  output: number;
  words: number;
  weights: number;
  locked: boolean;
}

export function ratesOf(config: Regularization & { dropout: number }): Rates {
  const rate = (v: number | undefined) => v ?? config.dropout;
  return {
    input: rate(config.dropoutInput), hidden: rate(config.dropoutHidden), output: rate(config.dropoutOutput),
    words: config.dropoutEmbedding ?? 0, weights: config.weightDrop ?? 0, locked: config.lockedDropout ?? false,
  };
}
