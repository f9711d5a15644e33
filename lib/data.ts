/**
 * Data pipelines: token ids -> time-major batches for the Network.
 *
 * stream     the corpus as one sequence, batchified into B columns (PyTorch's
 *            word_language_model `batchify`) and cut into windows of T steps; the
 *            recurrent state is carried from window to window (truncated BPTT).
 * sentences  each sentence as <sos> w1 ... wn <eos>, padded batches with lengths;
 *            the state starts from zero for every batch and padding is not counted.
 */
import { invalidArgument } from './errors';
import type { Batch } from './nn/network';
import { Random } from './util/random';

/** Windows over a batchified token stream. */
export class StreamBatches {
  /** Rows (time steps) per column. */
  readonly cols: number;
  readonly count: number;

  constructor(
    private readonly ids: Int32Array,
    readonly batchSize: number,
    readonly seqLength: number,
    what = 'text',
  ) {
    this.cols = Math.floor(ids.length / batchSize);
    if (this.cols < 2) {
      throw invalidArgument(
        `${what} has ${ids.length} tokens: too short for batchSize ${batchSize} (each of the ${batchSize} columns needs at least 2 tokens); use more text or a smaller batchSize`,
      );
    }
    this.count = Math.ceil((this.cols - 1) / seqLength);
  }

  /** Tokens predicted per pass (targets). */
  get tokens(): number {
    return (this.cols - 1) * this.batchSize;
  }

  /** Window k: inputs rows [kT, kT + len), targets one row later; the last window may be shorter. */
  batch(k: number): Batch {
    const { batchSize: B, seqLength: T, cols } = this;
    const start = k * T;
    const len = Math.min(T, cols - 1 - start);
    const inputs = new Int32Array(len * B), targets = new Int32Array(len * B);
    for (let b = 0; b < B; b++) {
      const base = b * cols + start;
      for (let t = 0; t < len; t++) {
        inputs[t * B + b] = this.ids[base + t];
        targets[t * B + b] = this.ids[base + t + 1];
      }
    }
    return { seqLength: len, batchSize: B, inputs, targets };
  }
}

/** Padded batches of whole sentences (each already <sos> ... <eos>). */
export class SentenceBatches {
  constructor(
    private readonly seqs: Int32Array[],
    readonly batchSize: number,
    private readonly opts: { shuffle: boolean; bucketing: boolean; seed: number },
  ) {
    for (const s of seqs) {
      if (s.length < 2) throw invalidArgument('every sentence needs at least 2 tokens (<sos> and <eos> included)');
    }
    if (seqs.length === 0) throw invalidArgument('no sentences to train on');
  }

  get count(): number {
    return Math.ceil(this.seqs.length / this.batchSize);
  }

  /** The longest window a batch can need (the longest sentence, less one). */
  get maxSteps(): number {
    return this.seqs.reduce((a, s) => Math.max(a, s.length - 1), 1);
  }

  /** Targets per pass: every token after <sos>. */
  get tokens(): number {
    return this.seqs.reduce((a, s) => a + s.length - 1, 0);
  }

  /**
   * The order of sentences in epoch `epoch` (a pure function of the seed and the epoch, so a
   * resumed run sees the same batches): shuffled, then (bucketing) sorted by length within
   * pools of 50 batches so that batches hold sentences of similar length.
   */
  order(epoch: number): number[] {
    const idx = this.seqs.map((_, i) => i);
    if (this.opts.shuffle) {
      const rng = new Random(this.opts.seed * 7919 + epoch);
      for (let i = idx.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
    }
    if (this.opts.bucketing) {
      const pool = this.batchSize * 50;
      const out: number[] = [];
      for (let i = 0; i < idx.length; i += pool) {
        out.push(...idx.slice(i, i + pool).sort((a, b) => this.seqs[a].length - this.seqs[b].length));
      }
      // Shuffle the order of the batches again so lengths do not ramp within a pool.
      const batches: number[][] = [];
      for (let i = 0; i < out.length; i += this.batchSize) batches.push(out.slice(i, i + this.batchSize));
      if (this.opts.shuffle) {
        const rng = new Random(this.opts.seed * 104729 + epoch);
        for (let i = batches.length - 1; i > 0; i--) {
          const j = Math.floor(rng.next() * (i + 1));
          [batches[i], batches[j]] = [batches[j], batches[i]];
        }
      }
      return batches.flat();
    }
    return idx;
  }

  batch(order: number[], k: number): Batch {
    const members = order.slice(k * this.batchSize, (k + 1) * this.batchSize).map((i) => this.seqs[i]);
    return padBatch(members);
  }
}

/** Time-major padded batch: inputs s[0..n-2], targets s[1..n-1], lengths n - 1, pad = 0. */
export function padBatch(members: Int32Array[]): Batch {
  const B = members.length;
  const T = Math.max(...members.map((s) => s.length - 1));
  const inputs = new Int32Array(T * B), targets = new Int32Array(T * B), lengths = new Int32Array(B);
  members.forEach((s, b) => {
    lengths[b] = s.length - 1;
    for (let t = 0; t < s.length - 1; t++) {
      inputs[t * B + b] = s[t];
      targets[t * B + b] = s[t + 1];
    }
  });
  return { seqLength: T, batchSize: B, inputs, targets, lengths };
}
