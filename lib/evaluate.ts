/**
 * evaluate: the mean negative log-likelihood over every target token of a text or of sentences,
 * whatever its length and the batch size. A stream is scored in overlapping columns (see
 * StreamBatches 'overlap'), then the few targets after the last column by continuing that
 * column's state in a batch of one; sentences in padded batches, padding not counted.
 */
import { SentenceBatches, StreamBatches } from './data';
import type { FloatArray } from './backend/types';
import type { DataMode, Inputs } from './inputs';
import type { Network } from './nn/network';
import { DEFAULTS } from './defaults';
import { Options, signalOf } from './options';
import { evaluateWithCache, parseCache, type CacheOptions, type CacheSettings } from './cache';
import { invalidArgument } from './errors';

/** Options of LanguageModel.evaluate. */
export interface EvaluateOptions {
  /** Default: from the data, as fit's ('stream' for a string or token ids, 'sentences' for an array of them). */
  mode?: DataMode;
  /** Columns of the text in stream mode (default 10), sentences per batch (default 32); which tokens are scored does not depend on it. */
  batchSize?: number;
  /** Time steps per window in stream mode (integer >= 1). Default 35. */
  seqLength?: number;
  /** Cancels the call (checked between batches): it rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * A continuous cache pointer (lib/cache.ts; Grave et al. 2016): each next-token distribution
   * mixed with one over the words that followed the `size` most recent similar states. Stream
   * mode; the text is read as one sequence (batchSize 1). `tuneCache` finds theta and lambda on
   * validation text. Default: none.
   */
  cache?: CacheOptions;
}

/** What evaluate measures. */
export interface Evaluation {
  /** Mean negative log-likelihood per target token, in nats. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Target tokens scored: every token after the first (N - 1 for a text of N tokens; per sentence for sentences). */
  tokens: number;
}

/** Data ready to score: encoded, validated and batched (made once, scored as often as needed). */
export type ScoringSet = (
  | { mode: 'stream'; columns: StreamBatches; tail?: StreamBatches }
  | { mode: 'sentences'; batches: SentenceBatches }
  | { mode: 'cache'; ids: Int32Array; seqLength: number; cache: CacheSettings }
) & { signal?: AbortSignal };

export function prepareScoring(inputs: Inputs, data: unknown, options: unknown, what: string): ScoringSet {
  const o = new Options('evaluate', options, ['mode', 'batchSize', 'seqLength', 'signal', 'cache']);
  const signal = signalOf('evaluate', o.raw('signal'));
  const mode = o.oneOf('mode', inputs.inferMode(data), ['stream', 'sentences'] as const);
  const T = o.integer('seqLength', DEFAULTS.evaluate.seqLength, { min: 1, max: 1 << 16 });
  if (o.has('cache')) {
    if (mode !== 'stream') throw invalidArgument("evaluate: cache is for mode 'stream' (a text read in order)");
    if (o.has('batchSize')) throw invalidArgument('evaluate: with cache the text is read as one sequence; leave batchSize out');
    return { mode: 'cache', signal, ids: inputs.stream(data, what), seqLength: T, cache: parseCache('evaluate', o.raw('cache')) };
  }
  const B = o.integer('batchSize', DEFAULTS.evaluate.batchSize[mode], { min: 1, max: 1 << 16 });
  if (mode === 'sentences') {
    return { mode, signal, batches: new SentenceBatches(inputs.sentences(data, what), B, { shuffle: false, bucketing: true, seed: 0 }) };
  }
  const columns = new StreamBatches(inputs.stream(data, what), B, T, what, 'overlap');
  return { mode, signal, columns, tail: columns.tail && new StreamBatches(columns.tail, 1, T, what, 'overlap') };
}

export async function evaluateSet(net: Network, set: ScoringSet): Promise<Evaluation> {
  if (set.mode === 'cache') return evaluateWithCache(net, set.ids, set.seqLength, set.cache, set.signal);
  let nll = 0, count = 0;
  const add = async () => {
    set.signal?.throwIfAborted();
    const r = await net.readLoss();
    nll += r.loss * r.count;
    count += r.count;
  };
  if (set.mode === 'stream') {
    const { columns, tail } = set;
    const B = columns.batchSize;
    net.resetState(B);
    for (let k = 0; k < columns.count; k++) {
      net.forward(columns.batch(k), { training: false });
      net.carryState();
      await add();
    }
    if (tail) {
      // The last column's final state, [L, B, H] -> [L, 1, H], continues into the tail.
      const { hx, cx } = net.state(B);
      const [h, c] = (await Promise.all([net.stream.read(hx), net.stream.read(cx)])) as FloatArray[];
      const { layers: L, hiddenSize: H } = net.config;
      const last = (all: FloatArray) => {
        const out = all.slice(0, L * H); // of the network's dtype
        for (let l = 0; l < L; l++) out.set(all.subarray((l * B + B - 1) * H, (l * B + B) * H), l * H);
        return out;
      };
      net.resetState(1);
      const one = net.state(1);
      net.stream.write(one.hx, last(h));
      net.stream.write(one.cx, last(c));
      for (let k = 0; k < tail.count; k++) {
        net.forward(tail.batch(k), { training: false });
        net.carryState();
        await add();
      }
    }
  } else {
    const sb = set.batches;
    const order = sb.order(0);
    for (let k = 0; k < sb.count; k++) {
      const batch = sb.batch(order, k);
      net.resetState(batch.batchSize);
      net.forward(batch, { training: false });
      await add();
    }
  }
  const loss = nll / count;
  return { loss, perplexity: Math.exp(loss), tokens: count };
}
