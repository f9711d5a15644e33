/**
 * The parameters of a model, as PyTorch word_language_model's state_dict names and shapes them,
 * in its order. The one description of them: Network places its flat buffers by it, checkpoints
 * are checked against it and summaries count it.
 */
import { RnnlmError } from '../errors';
import { CELLS, CELL_NAMES, numel, type Cell, type RnnDescriptor } from '../backend/types';
import { decoderSpecs, type SoftmaxConfig } from './decoder';
import { Random } from '../util/random';

/** Gates per recurrent cell (CELLS'): the rows of each weight matrix are gates x hiddenSize. */
export const GATES = Object.fromEntries(CELL_NAMES.map((c) => [c, CELLS[c].gates])) as Record<Cell, number>;

/** What the parameters depend on (a ModelConfig or a NetworkConfig). */
export interface LayoutConfig {
  cell: Cell;
  vocabSize: number;
  embeddingSize: number;
  hiddenSize: number;
  layers: number;
  tieWeights: boolean;
  /** The output layer (nn/decoder.ts); absent: the full softmax. */
  softmax?: SoftmaxConfig;
}

/** One named tensor of the state_dict. */
export interface ParamSpec {
  name: string;
  shape: number[];
  /** A recurrent tensor: its layer and the backend's id for it (0 weight_ih, 1 weight_hh, 2 bias_ih, 3 bias_hh). */
  rnn?: { layer: number; id: 0 | 1 | 2 | 3 };
  /** The tensor this one is (a tied decoder.weight is encoder.weight): no parameters of its own. */
  alias?: string;
}

/** A named tensor placed in a flat parameter buffer. */
export interface ParamEntry {
  /** PyTorch state_dict name. */
  name: string;
  offset: number;
  shape: number[];
}

const RNN_TENSORS = ['weight_ih', 'weight_hh', 'bias_ih', 'bias_hh'] as const;

/** The state_dict of a config, in order: encoder, each layer's four recurrent tensors, decoder (nn/decoder.ts). */
export function parameterSpecs(c: LayoutConfig): ParamSpec[] {
  const { vocabSize: V, embeddingSize: E, hiddenSize: H } = c;
  const G = GATES[c.cell] * H;
  const specs: ParamSpec[] = [{ name: 'encoder.weight', shape: [V, E] }];
  for (let layer = 0; layer < c.layers; layer++) {
    const shapes = [[G, layer === 0 ? E : H], [G, H], [G], [G]];
    RNN_TENSORS.forEach((kind, id) => specs.push({ name: `rnn.${kind}_l${layer}`, shape: shapes[id], rnn: { layer, id: id as 0 | 1 | 2 | 3 } }));
  }
  specs.push(...decoderSpecs(c.softmax ?? { type: 'full' }, V, H, c.tieWeights));
  return specs;
}

/** Parameters of a config (a tied decoder.weight counted once, as the encoder's). */
export function countParameters(specs: readonly ParamSpec[]): number {
  return specs.reduce((n, p) => (p.alias ? n : n + numel(p.shape)), 0);
}

/**
 * Where a backend keeps a recurrent tensor in its weight space (cuDNN's own order on CUDA). It
 * must have the state_dict's shape and lie within the space: ERR_NATIVE otherwise.
 */
export function weightSpaceOffset(rnn: RnnDescriptor, p: ParamSpec, device: string): number {
  const r = rnn.weightParam(p.rnn!.layer, p.rnn!.id);
  if (r.shape.length !== p.shape.length || r.shape.some((d, i) => d !== p.shape[i]) || !(r.offset >= 0 && r.offset + numel(p.shape) <= rnn.weightSize)) {
    throw new RnnlmError('ERR_NATIVE', `the ${device} backend keeps ${p.name} at ${r.offset} as [${r.shape.join(', ')}]; it must be [${p.shape.join(', ')}] within its ${rnn.weightSize} weights`);
  }
  return r.offset;
}

/**
 * PyTorch word_language_model's initialisation into data (the flat parameters): U(-0.1, 0.1) for
 * the encoder and decoder, decoder bias 0, U(-1/sqrt(H), 1/sqrt(H)) for the recurrent weights
 * (nn.LSTM's default); the adaptive softmax's layers as nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
 */
export function initialWeights(layout: readonly ParamEntry[], c: LayoutConfig, seed: number, data: Float32Array | Float64Array): void {
  const rng = new Random(seed);
  const k = 1 / Math.sqrt(c.hiddenSize);
  const adaptive = c.softmax?.type === 'adaptive';
  for (const e of layout) {
    if (e.name === 'decoder.bias' || (e.name === 'decoder.weight' && c.tieWeights)) continue;
    const r = e.name.startsWith('rnn.') ? k : adaptive && e.name.startsWith('decoder.') ? 1 / Math.sqrt(e.name.endsWith('.bias') ? c.hiddenSize : e.shape[1]) : 0.1;
    for (let i = e.offset; i < e.offset + numel(e.shape); i++) data[i] = rng.uniform(-r, r);
  }
}
