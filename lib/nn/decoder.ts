/**
 * The output layer: the top layer's hidden states -> log-probabilities of the vocabulary, and
 * the training loss. Two kinds, chosen by the `softmax` option:
 *
 * - 'full': PyTorch word_language_model's Linear decoder, log p = logSoftmax(h W^T + b).
 * - 'adaptive': nn.AdaptiveLogSoftmaxWithLoss (Grave et al. 2017, "Efficient softmax
 *   approximation for GPUs"). Ids must run from frequent to rare. The head scores the first
 *   cutoffs[0] words and one entry per cluster; cluster i holds ids [cutoffs[i], cutoffs[i+1])
 *   (the last ends at V) and is reached through a projection to d_i = floor(H / divValue^(i+1)):
 *     head   = h Wh^T (+ bh)                         [c0 + K]
 *     log p(w) = logSoftmax(head)_w                                        w < c0
 *     log p(w) = logSoftmax(head)_{c0+i} + logSoftmax((h P_i^T) O_i^T)_{w - lo_i}   w in cluster i
 *   Training and evaluation only compute, for each row, the head and the cluster of its target
 *   (rows gathered per cluster): that is the speed-up, most words being in the head. The full
 *   distribution (inference) computes every cluster, still H x (c0 + K + sum d_i) + sum d_i x |cluster i|
 *   multiply-adds per row instead of H x V.
 *
 * Both work on the network's stream and take their varying memory from a Scratch.
 */
import { DEFAULTS } from '../defaults';
import { invalidArgument } from '../errors';
import type { Stream, Tensor } from '../backend/types';
import type { LossScaler } from './loss-scale';
import type { Scratch } from './scratch';

/** The output layer's kind and, for the adaptive softmax, its clusters. */
export type SoftmaxConfig = { type: 'full' } | AdaptiveSoftmaxConfig;
export interface AdaptiveSoftmaxConfig {
  type: 'adaptive';
  /** Where the head ends and each cluster begins: strictly increasing ids in (0, vocabSize). */
  cutoffs: number[];
  /** Cluster i projects to floor(hiddenSize / divValue^(i + 1)) (> 1). */
  divValue: number;
  /** A bias on the head (PyTorch's head_bias). */
  headBias: boolean;
}

/** The `softmax` option of LanguageModel.create (defaults filled in: SoftmaxConfig). */
export type SoftmaxOptions = { type: 'full' } | { type: 'adaptive'; cutoffs: readonly number[]; divValue?: number; headBias?: boolean };

/** One cluster of the adaptive softmax: ids [lo, hi) behind a projection to `proj`. */
export interface Cluster {
  lo: number;
  hi: number;
  proj: number;
}

/** The clusters of an adaptive softmax (PyTorch's hsz = in_features // div_value ** (i + 1)). */
export function clustersOf(sm: AdaptiveSoftmaxConfig, vocabSize: number, hiddenSize: number): Cluster[] {
  const ends = [...sm.cutoffs, vocabSize];
  return sm.cutoffs.map((lo, i) => ({ lo, hi: ends[i + 1], proj: Math.floor(hiddenSize / sm.divValue ** (i + 1)) }));
}

/**
 * A softmax option validated against the model's sizes (shared by create and the checkpoint
 * reader): `fail` makes the error. undefined is the full softmax.
 */
export function parseSoftmax(
  value: unknown,
  dims: { vocabSize: number; hiddenSize: number; tieWeights: boolean },
  fail: (message: string) => Error,
): SoftmaxConfig {
  if (value === undefined) return { type: 'full' };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail(`softmax must be an object such as { type: 'adaptive', cutoffs: [2000, 10000] } (got ${JSON.stringify(value)})`);
  const o = value as Record<string, unknown>;
  if (o.type === 'full') {
    for (const k of Object.keys(o)) if (k !== 'type') throw fail(`softmax: unknown field '${k}' for type 'full'`);
    return { type: 'full' };
  }
  if (o.type !== 'adaptive') throw fail(`softmax.type must be 'full' or 'adaptive' (got ${JSON.stringify(o.type)})`);
  for (const k of Object.keys(o)) if (!['type', 'cutoffs', 'divValue', 'headBias'].includes(k)) throw fail(`softmax: unknown field '${k}'; known: type, cutoffs, divValue, headBias`);
  const V = dims.vocabSize;
  const c = o.cutoffs;
  if (!Array.isArray(c) || c.length === 0) throw fail(`softmax.cutoffs must be a non-empty array of ids, e.g. [2000, 10000] (got ${JSON.stringify(c)})`);
  c.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isInteger(x) || x <= 0 || x >= V) throw fail(`softmax.cutoffs[${i}] must be an integer in (0, ${V}) (the vocabulary size; got ${JSON.stringify(x)})`);
    if (i > 0 && x <= (c[i - 1] as number)) throw fail(`softmax.cutoffs must be strictly increasing (cutoffs[${i}] = ${x} after ${c[i - 1]})`);
  });
  const divValue = o.divValue === undefined ? DEFAULTS.adaptiveSoftmax.divValue : o.divValue;
  if (typeof divValue !== 'number' || !Number.isFinite(divValue) || !(divValue > 1)) throw fail(`softmax.divValue must be a number > 1 (got ${JSON.stringify(o.divValue)})`);
  const headBias = o.headBias === undefined ? DEFAULTS.adaptiveSoftmax.headBias : o.headBias;
  if (typeof headBias !== 'boolean') throw fail(`softmax.headBias must be a boolean (got ${JSON.stringify(o.headBias)})`);
  if (dims.tieWeights) throw fail('softmax: the adaptive softmax cannot be used with tieWeights (its clusters have their own projections; tied adaptive input/output is not implemented); set tieWeights: false');
  const sm: AdaptiveSoftmaxConfig = { type: 'adaptive', cutoffs: [...(c as number[])], divValue, headBias };
  const last = clustersOf(sm, V, dims.hiddenSize).at(-1)!;
  if (last.proj < 1) throw fail(`softmax: cluster ${c.length - 1} would project to floor(${dims.hiddenSize} / ${divValue}^${c.length}) = 0 dimensions; use fewer cutoffs, a smaller divValue or a larger hiddenSize`);
  return sm;
}

/**
 * Why training ids look numbered out of frequency order for this adaptive softmax, or null. The
 * head (ids < cutoffs[0]) should hold about as many of the tokens as the cutoffs[0] most frequent
 * ids do; when it holds under 80 % of that, most rows pay for a cluster and the model trains
 * slower and usually worse. Tokenizers number ids by frequency; raw ids are the user's.
 */
export function idOrderProblem(sm: SoftmaxConfig, vocabSize: number, data: readonly Int32Array[]): string | null {
  if (sm.type !== 'adaptive') return null;
  const counts = new Float64Array(vocabSize);
  let total = 0;
  for (const ids of data) for (const id of ids) if (id >= 0 && id < vocabSize) counts[id]++, total++;
  if (total === 0) return null;
  const c0 = sm.cutoffs[0];
  let head = 0;
  for (let i = 0; i < c0; i++) head += counts[i];
  const sorted = counts.slice().sort(); // ascending
  let best = 0;
  for (let i = vocabSize - 1; i >= vocabSize - c0; i--) best += sorted[i];
  if (head >= 0.8 * best) return null;
  const pct = (x: number) => `${((100 * x) / total).toFixed(1)} %`;
  return `the adaptive softmax needs token ids numbered from frequent to rare (id 0 the most frequent): in this training data its head (ids < ${c0}) holds ${pct(head)} of the tokens, while the ${c0} most frequent ids hold ${pct(best)}. Renumber the ids by frequency (a WordTokenizer or CharTokenizer does), or training is slower and usually worse`;
}

/** The parameter names and shapes of a decoder, in state_dict order (nn/layout.ts places them). */
export function decoderSpecs(sm: SoftmaxConfig, V: number, H: number, tied: boolean): { name: string; shape: number[]; alias?: string }[] {
  if (sm.type === 'full') {
    return [{ name: 'decoder.weight', shape: [V, H], ...(tied ? { alias: 'encoder.weight' } : {}) }, { name: 'decoder.bias', shape: [V] }];
  }
  const K = sm.cutoffs.length, c0 = sm.cutoffs[0];
  const specs = [{ name: 'decoder.head.weight', shape: [c0 + K, H] }];
  if (sm.headBias) specs.push({ name: 'decoder.head.bias', shape: [c0 + K] });
  clustersOf(sm, V, H).forEach((k, i) => {
    specs.push({ name: `decoder.tail.${i}.0.weight`, shape: [k.proj, H] });
    specs.push({ name: `decoder.tail.${i}.1.weight`, shape: [k.hi - k.lo, k.proj] });
  });
  return specs;
}

/** What a decoder needs of its network: the stream and its named parameters and gradients. */
export interface DecoderHost {
  readonly stream: Stream;
  param(name: string): Tensor;
  /** The row scales of an int8 matrix (a quantized network), else null. */
  scale(name: string): Tensor | null;
  grad(name: string): Tensor;
  /** In training with a loss scale (nn/loss-scale.ts): each loss gradient is multiplied by S before it flows back. */
  readonly lossScaler?: LossScaler | null;
}

/**
 * The fused log-softmax + NLL of the logits; with `grad`, the loss gradient replaces them (in
 * place), times the training's loss scale when it has one: every loss gradient that flows back.
 */
function crossEntropy(host: DecoderHost, logits: Tensor, targets: Tensor, ignore: number, loss: Tensor, grad: boolean, options?: { divisor?: number; accumulate?: boolean }): void {
  host.stream.crossEntropy(logits, targets, ignore, loss, grad ? logits : null, options);
  if (grad) host.lossScaler?.scale(logits);
}

export interface Decoder {
  /** out [n, V] = log p(. | h[r]) for h [n, H]; batchInvariant: each row as it would be alone (CPU). */
  logProbs(h: Tensor, out: Tensor, options?: { batchInvariant?: boolean }): void;
  /**
   * loss [2] = (mean NLL of the targets != ignore, their count) for x [N, H]. With dx: d loss / d x
   * is written to dx (=) and the decoder's weight gradients accumulate (+=). `targets` are read
   * on the host (the adaptive softmax routes rows by them).
   */
  loss(x: Tensor, targets: Int32Array, ignore: number, loss: Tensor, dx: Tensor | null, staged?: boolean): void;
  /** The targets' write of loss, ahead of it (staged: true; a graph's step). The full softmax only. */
  stageTargets?(targets: Int32Array): void;
  /** Elements of scratch a loss over N rows needs at most (memory estimates). */
  lossScratch(N: number): number;
}

/** chunkElements: the bound on a cluster chunk's logits (tests make it small to exercise chunking). */
export function createDecoder(sm: SoftmaxConfig, host: DecoderHost, scratch: Scratch, V: number, H: number, chunkElements = CHUNK_ELEMENTS): Decoder {
  return sm.type === 'full' ? new FullDecoder(host, scratch, V) : new AdaptiveDecoder(host, scratch, sm, V, H, chunkElements);
}

/** linearForward's options for a decoder matrix: the row scales of an int8 one (a quantized network). */
function linearOptions(host: DecoderHost, name: string, options?: { batchInvariant?: boolean }) {
  const scale = host.scale(name);
  return scale ? { ...options, scale } : options;
}

class FullDecoder implements Decoder {
  constructor(
    private readonly host: DecoderHost,
    private readonly scratch: Scratch,
    private readonly V: number,
  ) {}

  logProbs(h: Tensor, out: Tensor, options?: { batchInvariant?: boolean }): void {
    const s = this.host.stream;
    s.linearForward(h, this.host.param('decoder.weight'), this.host.param('decoder.bias'), out, linearOptions(this.host, 'decoder.weight', options));
    s.logSoftmax(out, out);
  }

  stageTargets(targets: Int32Array): void {
    this.host.stream.write(this.scratch.i32('targets', targets.length), targets);
  }

  loss(x: Tensor, targets: Int32Array, ignore: number, loss: Tensor, dx: Tensor | null, staged = false): void {
    const s = this.host.stream, N = targets.length, V = this.V;
    const tg = this.scratch.i32('targets', N);
    const logits = this.scratch.f('logits', N * V, [N, V]);
    if (!staged) s.write(tg, targets);
    s.linearForward(x, this.host.param('decoder.weight'), this.host.param('decoder.bias'), logits, linearOptions(this.host, 'decoder.weight'));
    // The gradient of the logits replaces them (the fused op writes it in place).
    crossEntropy(this.host, logits, tg, ignore, loss, dx !== null);
    if (dx) s.linearBackward(x, this.host.param('decoder.weight'), logits, dx, this.host.grad('decoder.weight'), this.host.grad('decoder.bias'));
  }

  lossScratch(N: number): number {
    return N * this.V + N;
  }
}

/**
 * Cluster rows are processed in chunks whose logits stay under this many elements (32 MiB of
 * float32): a rare-word cluster of 250k ids would otherwise need [N, 250k] for a batch whose
 * targets all fell in it, which is the full softmax's memory again.
 */
const CHUNK_ELEMENTS = 1 << 23;

class AdaptiveDecoder implements Decoder {
  private readonly clusters: Cluster[];
  private readonly c0: number;
  /** Head outputs: c0 words + one per cluster. */
  private readonly headSize: number;

  constructor(
    private readonly host: DecoderHost,
    private readonly scratch: Scratch,
    private readonly sm: AdaptiveSoftmaxConfig,
    private readonly V: number,
    private readonly H: number,
    private readonly chunkElements: number,
  ) {
    this.clusters = clustersOf(sm, V, H);
    this.c0 = sm.cutoffs[0];
    this.headSize = this.c0 + this.clusters.length;
  }

  private get headBias(): Tensor | null {
    return this.sm.headBias ? this.host.param('decoder.head.bias') : null;
  }

  logProbs(h: Tensor, out: Tensor, options?: { batchInvariant?: boolean }): void {
    const s = this.host.stream, n = h.shape[0];
    const head = this.scratch.f('head', n * this.headSize, [n, this.headSize]);
    s.linearForward(h, this.host.param('decoder.head.weight'), this.headBias, head, linearOptions(this.host, 'decoder.head.weight', options));
    s.logSoftmax(head, head);
    // The head's words (their row is already normalised; this copies them into place).
    s.logSoftmaxInto(head, out, 0, this.c0, null, 0);
    this.clusters.forEach((k, i) => {
      const size = k.hi - k.lo;
      const proj = this.scratch.f('proj', n * k.proj, [n, k.proj]);
      const logits = this.scratch.f('cluster', n * size, [n, size]);
      s.linearForward(h, this.host.param(`decoder.tail.${i}.0.weight`), null, proj, linearOptions(this.host, `decoder.tail.${i}.0.weight`, options));
      s.linearForward(proj, this.host.param(`decoder.tail.${i}.1.weight`), null, logits, linearOptions(this.host, `decoder.tail.${i}.1.weight`, options));
      s.logSoftmaxInto(logits, out, k.lo, size, head, this.c0 + i);
    });
  }

  loss(x: Tensor, targets: Int32Array, ignore: number, loss: Tensor, dx: Tensor | null): void {
    const s = this.host.stream, N = targets.length, H = this.H, c0 = this.c0;
    // Route each counted row: its head target (a word, or its cluster's entry) and its cluster.
    const headTargets = new Int32Array(N);
    const members: number[][] = this.clusters.map(() => []);
    let count = 0;
    for (let n = 0; n < N; n++) {
      const t = targets[n];
      if (t === ignore) {
        headTargets[n] = -1;
        continue;
      }
      if (!Number.isInteger(t) || t < 0 || t >= this.V) throw invalidArgument(`target id ${t} at position ${n} is outside the vocabulary [0, ${this.V})`);
      count++;
      if (t < c0) {
        headTargets[n] = t;
        continue;
      }
      let i = 0;
      while (t >= this.clusters[i].hi) i++;
      headTargets[n] = c0 + i;
      members[i].push(n);
    }
    const tg = this.scratch.i32('targets', N);
    const head = this.scratch.f('head', N * this.headSize, [N, this.headSize]);
    s.write(tg, headTargets);
    s.linearForward(x, this.host.param('decoder.head.weight'), this.headBias, head, linearOptions(this.host, 'decoder.head.weight'));
    crossEntropy(this.host, head, tg, -1, loss, dx !== null);
    if (dx) {
      s.linearBackward(x, this.host.param('decoder.head.weight'), head, dx, this.host.grad('decoder.head.weight'), this.sm.headBias ? this.host.grad('decoder.head.bias') : null);
    }
    this.clusters.forEach((k, i) => {
      const m = members[i], size = k.hi - k.lo;
      const P = this.host.param(`decoder.tail.${i}.0.weight`), O = this.host.param(`decoder.tail.${i}.1.weight`);
      const chunk = Math.max(1, Math.floor(this.chunkElements / size));
      for (let r0 = 0; r0 < m.length; r0 += chunk) {
        const r = Math.min(chunk, m.length - r0);
        // ids: the rows (positions in x), then their targets within the cluster.
        const ids = new Int32Array(2 * r);
        for (let j = 0; j < r; j++) {
          ids[j] = m[r0 + j];
          ids[r + j] = targets[m[r0 + j]] - k.lo;
        }
        const at = this.scratch.i32('rows', 2 * r);
        s.write(at, ids);
        const pick = { buffer: at.buffer, offset: 0, shape: [r] }, rel = { buffer: at.buffer, offset: r, shape: [r] };
        const g = this.scratch.f('gathered', r * H, [r, H]);
        const p = this.scratch.f('proj', r * k.proj, [r, k.proj]);
        const logits = this.scratch.f('cluster', r * size, [r, size]);
        s.embeddingForward(x, pick, g); // g = x[rows]
        s.linearForward(g, P, null, p, linearOptions(this.host, `decoder.tail.${i}.0.weight`));
        s.linearForward(p, O, null, logits, linearOptions(this.host, `decoder.tail.${i}.1.weight`));
        // The cluster's NLL joins the head's mean: divided by every counted target, added to loss[0].
        crossEntropy(this.host, logits, rel, -1, loss, dx !== null, { divisor: count, accumulate: true });
        if (dx) {
          const dp = this.scratch.f('dproj', r * k.proj, [r, k.proj]);
          const dg = this.scratch.f('dgathered', r * H, [r, H]);
          s.linearBackward(p, O, logits, dp, this.host.grad(`decoder.tail.${i}.1.weight`), null);
          s.linearBackward(g, P, dp, dg, this.host.grad(`decoder.tail.${i}.0.weight`), null);
          s.embeddingBackward(pick, dg, dx, -1); // dx[rows] += dg
        }
      }
    });
  }

  lossScratch(N: number): number {
    const worst = Math.max(...this.clusters.map((k) => Math.min(N, Math.max(1, Math.floor(this.chunkElements / (k.hi - k.lo)))) * (k.hi - k.lo + 2 * k.proj + 2 * this.H)));
    return N * this.headSize + worst + 3 * N;
  }
}
