/**
 * Data pipelines: token ids -> time-major batches for the Network.
 *
 * stream     the corpus as one sequence cut into B columns and windows of T steps; the
 *            recurrent state is carried from window to window (truncated BPTT). Training uses
 *            PyTorch word_language_model's `batchify` (each column floor(N / B) tokens; the
 *            target after each column's end and the last N mod B tokens are not trained on);
 *            scoring uses columns that overlap by one token, so that every target is scored
 *            (see {@link StreamBatches}). There is no padding: every target counts.
 * sentences  each sentence as given (text: <sos> w1 ... wn <eos>), padded batches with lengths;
 *            the state starts from zero for every batch; padded targets are {@link IGNORE}.
 */
import { invalidArgument, plural } from './errors';
import type { Batch } from './nn/network';
import { Random } from './util/random';

/** Target of a padded position: not an id of any vocabulary, so the loss skips it (and only it). */
export const IGNORE = -1;

/**
 * Windows over a token stream cut into columns.
 * 'batchify' (training): column b is ids[b·c, (b+1)·c), c = floor(N / B).
 * 'overlap' (scoring): column b is ids[b·c, (b+1)·c], c = floor((N - 1) / B), so consecutive
 * columns share a token and every target up to B·c is scored; `tail` holds the rest (fewer than
 * B targets), to be scored by continuing the last column. B is lowered to N - 1 when larger.
 */
export class StreamBatches {
  /** Rows (time steps) per column. */
  readonly cols: number;
  readonly count: number;
  readonly batchSize: number;
  /** Distance between column starts. */
  private readonly stride: number;
  /** 'overlap': the ids after the last column, starting with its last one (length >= 2), or none. */
  readonly tail?: Int32Array;

  constructor(
    private readonly ids: Int32Array,
    batchSize: number,
    readonly seqLength: number,
    what = 'text',
    layout: 'batchify' | 'overlap' = 'batchify',
  ) {
    const N = ids.length;
    if (layout === 'overlap') {
      if (N < 2) throw invalidArgument(`${what} has ${plural(N, 'token')}: scoring needs at least 2 (a token and the one after it)`);
      this.batchSize = Math.min(batchSize, N - 1);
      this.stride = Math.floor((N - 1) / this.batchSize);
      this.cols = this.stride + 1;
      const rest = ids.subarray(this.batchSize * this.stride);
      if (rest.length >= 2) this.tail = rest;
    } else {
      this.batchSize = batchSize;
      this.stride = this.cols = Math.floor(N / batchSize);
      if (this.cols < 2) {
        throw invalidArgument(
          `${what} has ${plural(N, 'token')}: too short for batchSize ${batchSize} (each of the ${batchSize} columns needs at least 2 tokens); use more text or a smaller batchSize`,
        );
      }
    }
    this.count = Math.ceil((this.cols - 1) / seqLength);
  }

  /** Targets per pass over the columns (the tail not included). */
  get tokens(): number {
    return (this.cols - 1) * this.batchSize;
  }

  /** Window k: inputs rows [kT, kT + len), targets one row later; the last window may be shorter. */
  batch(k: number): Batch {
    return this.window(k * this.seqLength, this.seqLength);
  }

  /**
   * The windows of one pass with variable lengths (AWD-LSTM's variable BPTT): each window is
   * seqLength long, or half of it with probability 0.05, plus normal noise of deviation 5,
   * rounded, at least 5 steps (fewer only at the end) and at most seqLength + 20 ({@link maxVariableLength}).
   * Windows differ in every pass, so that each token is seen with different histories.
   */
  variableWindows(rng: Random): { start: number; length: number }[] {
    const out: { start: number; length: number }[] = [];
    for (let start = 0; start < this.cols - 1; ) {
      const base = rng.next() < 0.95 ? this.seqLength : this.seqLength / 2;
      const length = Math.min(Math.max(5, Math.round(base + 5 * rng.normal())), maxVariableLength(this.seqLength), this.cols - 1 - start);
      out.push({ start, length });
      start += length;
    }
    return out;
  }

  /** Inputs rows [start, start + len), targets one row later (cut at the columns' end). */
  window(start: number, T: number): Batch {
    const { batchSize: B, cols, stride } = this;
    const len = Math.min(T, cols - 1 - start);
    const inputs = new Int32Array(len * B), targets = new Int32Array(len * B);
    for (let b = 0; b < B; b++) {
      const base = b * stride + start;
      for (let t = 0; t < len; t++) {
        inputs[t * B + b] = this.ids[base + t];
        targets[t * B + b] = this.ids[base + t + 1];
      }
    }
    return { seqLength: len, batchSize: B, inputs, targets };
  }
}

/** The longest window of variable-length BPTT around seqLength. */
export const maxVariableLength = (seqLength: number) => seqLength + 20;

/** Padded batches of whole sentences (each with its <sos> / <eos>, if any, already in place). */
export class SentenceBatches {
  constructor(
    private readonly seqs: Int32Array[],
    readonly batchSize: number,
    private readonly opts: { shuffle: boolean; bucketing: boolean; seed: number },
  ) {
    for (const s of seqs) {
      if (s.length < 2) throw invalidArgument('every sentence needs at least 2 tokens (a first token and a target)');
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

  /** Targets per pass: every token after the first of each sentence. */
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

/**
 * Time-major padded batch: inputs s[0..n-2], targets s[1..n-1], lengths n - 1. Padded targets are
 * IGNORE; padded inputs are id 0, whose value does not matter: the recurrent layers stop at each
 * sequence's length (their output there is zero and no gradient flows back to the embedding).
 */
export function padBatch(members: Int32Array[]): Batch {
  const B = members.length;
  const T = Math.max(...members.map((s) => s.length - 1));
  const inputs = new Int32Array(T * B), targets = new Int32Array(T * B).fill(IGNORE), lengths = new Int32Array(B);
  members.forEach((s, b) => {
    lengths[b] = s.length - 1;
    for (let t = 0; t < s.length - 1; t++) {
      inputs[t * B + b] = s[t];
      targets[t * B + b] = s[t + 1];
    }
  });
  return { seqLength: T, batchSize: B, inputs, targets, lengths };
}
