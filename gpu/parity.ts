// The GPU check's parity phases (gpu/gpu-check.ts runs them): the same weights and batch through
// the CPU (float32) and CUDA backends, loss, final states and every gradient; per cuDNN algorithm
// and per precision. Also the helpers the other phases share (batches, networks, weight copies).
import { cpuBackend } from '../lib/backend/cpu';
import type { Backend, Cell } from '../lib/backend/types';
import type { SoftmaxConfig } from '../lib/nn/decoder';
import { LossScaler } from '../lib/nn/loss-scale';
import { Network, type Batch } from '../lib/nn/network';
import { Random } from '../lib/util/random';
import { randomIds } from '../test/random-batch';
import { relError } from '../test/rel-error';

export function batch(T: number, B: number, V: number, seed: number, ragged: boolean): Batch {
  const rng = new Random(seed);
  const lengths = Int32Array.from({ length: B }, (_, b) => (ragged ? Math.max(1, T - ((b * 3) % T)) : T));
  const { inputs, targets } = randomIds(rng, T, B, V, lengths);
  return { seqLength: T, batchSize: B, inputs, targets, lengths: ragged ? lengths : null };
}

export function net(backend: Backend, cell: Cell, V: number, E: number, H: number, L: number, dropout = 0, softmax?: SoftmaxConfig, regularization: object = {}) {
  return new Network(backend, { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell, dropout, tieWeights: false, dtype: 'f32', paddingIdx: 0, softmax, ...regularization });
}

/**
 * AWD-LSTM's regularizers: the same masks on both backends (one counter RNG, the same keys), so
 * the loss and gradients must agree as without them. Locked dropout between layers makes CUDA train
 * the stack layer by layer (nn/layerwise.ts; here asked for explicitly, whatever
 * RNNLM_CUDA_LAYERWISE says); the CPU reference takes that path too, so that its masks are the
 * dropout op's, as CUDA's.
 */
export const AWD = { dropoutEmbedding: 0.1, dropoutInput: 0.3, dropoutHidden: 0.3, dropoutOutput: 0.3, lockedDropout: true, weightDrop: 0.4 };

/** The adaptive softmax's parity case: a head and two clusters (cuBLAS on gathered rows, our kernels). */
export const ADAPTIVE: SoftmaxConfig = { type: 'adaptive', cutoffs: [10, 30], divValue: 2, headBias: true };

/** The same canonical tensors, by name (the CUDA weight space is cuDNN's layout, not the CPU's). */
export async function copyWeights(from: Network, to: Network) {
  for (const e of from.layout) to.writeParam(e.name, (await from.readParam(e.name)) as Float32Array);
}

export async function parity(cuda: Backend) {
  const rows = [];
  for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]) {
    for (const L of [1, 2, 3]) {
      try {
        rows.push(await parityOne(cuda, cell, L));
      } catch (e) {
        console.error(`parity ${cell} L=${L}: ERROR`, e);
        rows.push({ cell, layers: L, pass: false, error: String((e as Error)?.stack ?? e) });
      }
    }
  }
  try {
    rows.push(await parityOne(cuda, 'lstm', 2, ADAPTIVE));
  } catch (e) {
    console.error('parity lstm L=2 adaptive: ERROR', e);
    rows.push({ cell: 'lstm', layers: 2, softmax: 'adaptive', pass: false, error: String((e as Error)?.stack ?? e) });
  }
  for (const cell of ['lstm', 'gru'] as Cell[]) {
    try {
      rows.push(await parityOne(cuda, cell, 2, undefined, true));
    } catch (e) {
      console.error(`parity ${cell} L=2 awd: ERROR`, e);
      rows.push({ cell, layers: 2, awd: true, pass: false, error: String((e as Error)?.stack ?? e) });
    }
  }
  return rows;
}

/** A variant of the CUDA side: its own config keys (precision), a limit other than 1e-4, a label, a loss scale. */
interface Variant {
  label: string;
  gpu?: object;
  limit: number;
  /** The CUDA side's backward pass with this loss scale (nn/loss-scale.ts), its gradients unscaled after. */
  lossScale?: number;
}

export async function parityOne(cuda: Backend, cell: Cell, L: number, softmax?: SoftmaxConfig, awd = false, variant?: Variant) {
  const V = 50, E = 24, H = 32, T = 12, B = 6;
  const reg = awd ? AWD : {};
  const both = awd ? { ...reg, layerwise: true } : reg;
  const limit = variant?.limit ?? 1e-4;
  const a = net(cpuBackend, cell, V, E, H, L, 0, softmax, both), g = net(cuda, cell, V, E, H, L, 0, softmax, { ...both, ...variant?.gpu });
  a.initialize(7);
  await copyWeights(a, g);
  const bt = batch(T, B, V, 3, true);
  const errors: Record<string, number> = {};
  for (const n of [a, g]) {
    const st = n.state(B);
    const h0 = Float32Array.from({ length: L * B * H }, (_, i) => Math.sin(i) * 0.3);
    n.stream.write(st.hx, h0);
    n.stream.write(st.cx, h0);
    n.zeroGrad();
    // The AWD case's batch has no padding: AR / TAR need whole time steps.
    const scaler = n === g && variant?.lossScale ? new LossScaler(n.stream, 'f32', { initial: variant.lossScale, growthInterval: 1 << 20 }) : null;
    n.lossScaler = scaler;
    n.forward(awd ? { ...bt, lengths: null } : bt, { training: true, seed: 1 });
    n.backward({ stateGrads: true, ...(awd ? { ar: 2, tar: 1 } : {}) });
    if (scaler) {
      for (const t of [n.allGrads, st.dhx, st.dcx]) scaler.unscale(t);
      n.lossScaler = null;
      scaler.free();
    }
  }
  const [la, lg] = [await a.readLoss(), await g.readLoss()];
  errors.loss = Math.abs(la.loss - lg.loss) / Math.abs(la.loss);
  if (awd) errors.penalty = Math.abs((await a.readPenalty()) - (await g.readPenalty())) / Math.abs(await a.readPenalty());
  const sa = a.state(B), sg = g.state(B);
  errors.hy = relError(await a.stream.read(sa.hy), await g.stream.read(sg.hy));
  errors.dhx = relError(await a.stream.read(sa.dhx), await g.stream.read(sg.dhx));
  if (cell === 'lstm') {
    errors.cy = relError(await a.stream.read(sa.cy), await g.stream.read(sg.cy));
    errors.dcx = relError(await a.stream.read(sa.dcx), await g.stream.read(sg.dcx));
  }
  for (const e of a.layout) errors[`d ${e.name}`] = relError(await a.readGrad(e.name), await g.readGrad(e.name));
  if (softmax) {
    // The full distribution (every cluster) as inference computes it.
    for (const n of [a, g]) n.resetState(B);
    errors.logProbs = relError(await a.stream.read(a.logProbs(bt.inputs, T, B)), await g.stream.read(g.logProbs(bt.inputs, T, B)));
  }
  const worst = Math.max(...Object.values(errors));
  const name = `${cell} L=${L}${softmax ? ` ${softmax.type}` : ''}${awd ? ' awd' : ''}${variant ? ` ${variant.label}` : ''}`;
  console.log(`parity ${name}: max relative error ${worst.toExponential(2)} ${worst <= limit ? 'ok' : 'FAIL'} (limit ${limit})`);
  if (worst > limit) console.log('  ', JSON.stringify(errors));
  const algorithms = g.rnn.algorithms();
  a.dispose();
  g.dispose();
  return {
    cell, layers: L, ...(softmax ? { softmax: softmax.type } : {}), ...(awd ? { awd } : {}), ...(variant ? { variant: variant.label, limit } : {}),
    maxRelError: worst, pass: worst <= limit, errors, ...(algorithms.length ? { algorithms } : {}),
  };
}

/**
 * Each cuDNN algorithm (issue 26, item 2) against the CPU, as the fp32 parity: all four cells at
 * 1 and 2 layers, every algorithm named and then auto (each shape timed, the fastest kept: its
 * choices are in the rows). An algorithm cuDNN refuses for a configuration (its status at the
 * descriptor or the run) is a row with that error: the report tells refused from wrong.
 */
export async function algorithmParity(cuda: Backend) {
  const rows = [];
  for (const algorithm of ['persist_static', 'persist_static_small_h', 'auto'] as const) {
    const withAlgorithm: Backend = { ...cuda, createRnn: (o) => cuda.createRnn({ ...o, algorithm }) };
    for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]) {
      for (const L of [1, 2]) {
        try {
          rows.push({ algorithm, ...(await parityOne(withAlgorithm, cell, L, undefined, false, { label: algorithm, limit: 1e-4 })) });
        } catch (e) {
          console.error(`parity ${cell} L=${L} ${algorithm}: ERROR ${(e as Error).message}`);
          rows.push({ algorithm, cell, layers: L, pass: false, error: String((e as Error)?.stack ?? e) });
        }
      }
    }
  }
  return rows;
}

/**
 * The precisions (issue 26, item 3) against the CPU's fp32, all four cells at 2 layers:
 * tf32 rounds each product's operands to a 10-bit mantissa (relative 2^-11 = 4.9e-4 each), bf16
 * (training) keeps cuDNN's data in 8 bits (2^-9 = 2e-3) and fp16 in 11 (2^-12), each summed
 * in float32 over I + H terms per gate and carried through T steps and L layers. fp16 also with
 * a loss scale of 2^12 (the backward pass on S times the gradients, unscaled after). The limits
 * are generous on purpose (tf32 and fp16 1e-2, bf16 5e-2); the measured errors are the record.
 */
export async function precisionParity(cuda: Backend) {
  const variants: Variant[] = [
    { label: 'tf32', gpu: { precision: 'tf32' }, limit: 1e-2 },
    { label: 'bf16', gpu: { precision: 'bf16' }, limit: 5e-2 },
    { label: 'fp16', gpu: { precision: 'fp16' }, limit: 1e-2 },
    { label: 'fp16 scaled', gpu: { precision: 'fp16' }, limit: 1e-2, lossScale: 2 ** 12 },
  ];
  const rows = [];
  for (const v of variants) {
    for (const cell of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'] as Cell[]) {
      try {
        rows.push(await parityOne(cuda, cell, 2, undefined, false, v));
      } catch (e) {
        console.error(`parity ${cell} L=2 ${v.label}: ERROR`, e);
        rows.push({ cell, layers: 2, variant: v.label, pass: false, error: String((e as Error)?.stack ?? e) });
      }
    }
  }
  return rows;
}
