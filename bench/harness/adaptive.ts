/**
 * The adaptive-softmax benchmark (`npm run bench:adaptive`, bench/adaptive.ts): a 2 x 200 LSTM
 * over token ids, full vs adaptive softmax at WikiText-2 and -103 vocabulary sizes, training at
 * batch 20 x 35 and generation at batch 1, each (V, softmax) in its own process so its peak memory
 * is its own. This file holds what the report is and what is made of it (its types, the plan, the
 * corpus, the ratios and the targets); adaptive-run.ts runs it, adaptive-worker.ts is one
 * configuration's process.
 */
import { Random } from '../../lib/util/random';
import type { BenchReport } from './run';
import type { ServeTarget } from './serve';

/** One vocabulary size and the adaptive softmax's cutoffs for it (issue 24). */
export interface AdaptiveSize {
  vocabSize: number;
  cutoffs: number[];
}

export const ADAPTIVE_SIZES: readonly AdaptiveSize[] = [
  { vocabSize: 10_000, cutoffs: [2000, 6000] },
  { vocabSize: 33_278, cutoffs: [2000, 10000] },
  { vocabSize: 100_000, cutoffs: [2000, 10000, 40000] },
  { vocabSize: 267_735, cutoffs: [2000, 10000, 50000] },
];
/** --quick: the same model and code paths (two and three clusters) at vocabularies that take seconds. */
export const QUICK_ADAPTIVE_SIZES: readonly AdaptiveSize[] = [
  { vocabSize: 1_000, cutoffs: [200, 600] },
  { vocabSize: 3_000, cutoffs: [200, 1000, 2000] },
];
/** The plan's sizes (quick or not), or only the given ones of them; a size not in the plan is refused. */
export function planSizes(quick: boolean, only?: number[]): AdaptiveSize[] {
  const all = quick ? QUICK_ADAPTIVE_SIZES : ADAPTIVE_SIZES;
  return only ? only.map((V) => {
    const s = all.find((x) => x.vocabSize === V);
    if (!s) throw new Error(`--sizes: ${V} is not one of ${all.map((x) => x.vocabSize).join(', ')}`);
    return s;
  }) : [...all];
}
export const DIV_VALUE = 4;
export const HEAD_BIAS = false;
/** The model and the training batch (zaremba-small's sizes at seqLength 35), the optimizer as bench/harness/rnnlm-peer.ts's. */
export const ADAPTIVE_MODEL = {
  cell: 'lstm', layers: 2, hiddenSize: 200, embeddingSize: 200, batchSize: 20, seqLength: 35,
  optimizer: { type: 'adam', lr: 1e-3 }, clipNorm: 5,
} as const;
/** Tokens each timed generate call draws (batch 1, temperature 1, through the whole distribution), and its prompt's length. */
export const GENERATE_TOKENS = 200;
export const QUICK_GENERATE_TOKENS = 20;
export const PROMPT_TOKENS = 10;
/** The corpus's Zipf exponent: P(id r) proportional to 1 / (r + 1)^s, ids in frequency order. */
export const ZIPF_S = 1;
export const SOFTMAXES = ['full', 'adaptive'] as const;
export type SoftmaxKind = (typeof SOFTMAXES)[number];

/** The speed targets on the 2-core CPU (issue 24): adaptive ÷ full at these vocabulary sizes and above. */
export const ADAPTIVE_TARGETS = { train: [{ from: 33_278, ratio: 2 }, { from: 100_000, ratio: 4 }], generate: [{ from: 100_000, ratio: 3 }] };

/** What the parent hands one configuration's process. */
export interface AdaptiveSpec {
  vocabSize: number;
  softmax: SoftmaxKind;
  cutoffs: number[];
  seed: number;
  /** Timed training lasts at least this long (and at least minSteps steps, at most maxSteps). */
  minSeconds: number;
  minSteps: number;
  maxSteps: number;
  /** Timed generation: calls of generateTokens tokens until this long has passed (at least one). */
  genSeconds: number;
  generateTokens: number;
}

/** The process's peaks so far: the backend's memoryStats().peakBytes and the kernel's VmHWM, in MiB. */
export interface Peaks {
  backendMiB: number;
  rssMiB: number;
}

export interface AdaptiveRun {
  vocabSize: number;
  softmax: SoftmaxKind;
  /** The adaptive softmax's cutoffs (divValue and headBias: the report's model). */
  cutoffs?: number[];
  status: 'ok' | 'error' | 'timeout';
  reason?: string;
  parameters?: number;
  /** The backend's BLAS and its threads. */
  info?: Record<string, string | number>;
  /** After a warm-up call: `calls` calls of model.generate, each GENERATE_TOKENS tokens (counted from details.ids). */
  generate?: { calls: number; tokens: number; seconds: number; tokensPerSecond: number };
  train?: {
    /** Steps of the warm-up fit calls (not timed), their seconds, and the first step's loss. */
    warmupSteps: number;
    warmupSeconds: number;
    firstLoss: number;
    /** The timed fit call: its windows of batchSize x seqLength, its wall seconds, tokens/s from them. */
    steps: number;
    seconds: number;
    tokensPerSecond: number;
    /** What fit's epoch log said: target tokens trained and its tokens/s (its steps only, not the call's set-up). */
    tokens: number;
    fitTokensPerSecond: number;
    loss: number;
  };
  /** Peaks at the end of generation (model and generation), and at the end (training too). */
  memory?: { afterGenerate: Peaks; end?: Peaks };
  /** The process, from spawn to exit. */
  seconds?: number;
}

/** Adaptive ÷ full for one vocabulary size: speeds (> 1: adaptive faster) and peaks (< 1: adaptive smaller). */
export interface AdaptiveRatios {
  train?: number;
  generate?: number;
  backendPeak?: number;
  rssPeak?: number;
}

export interface AdaptiveReport {
  kind: 'rnnlm-adaptive-bench';
  date: string;
  /** The checkout measured: HEAD, and whether tracked files differed from it. */
  commit?: { hash: string; dirty: boolean };
  machine: BenchReport['machine'];
  options: { quick: boolean; minSeconds: number; minSteps: number; maxSteps: number; genSeconds: number; budget: number; generateTokens: number; device: 'cpu' };
  model: typeof ADAPTIVE_MODEL & { divValue: number; headBias: boolean; corpus: string };
  runs: AdaptiveRun[];
  /** One per vocabulary size, from its two runs. */
  pairs: { vocabSize: number; cutoffs: number[]; ratios: AdaptiveRatios }[];
  targets?: ServeTarget[];
  /** Set while runs are still to come (the file is rewritten after every run). */
  partial?: boolean;
}

/** Cumulative Zipf weights over ids 0 .. V - 1, for zipfTokens. */
export function zipfCdf(vocabSize: number, s = ZIPF_S): Float64Array {
  const cdf = new Float64Array(vocabSize);
  let sum = 0;
  for (let r = 0; r < vocabSize; r++) cdf[r] = sum += 1 / (r + 1) ** s;
  return cdf;
}

/** n token ids drawn independently from the Zipf distribution `cdf` (seeded): id 0 the most frequent. */
export function zipfTokens(n: number, cdf: Float64Array, seed: number): Int32Array {
  const rng = new Random(seed);
  const total = cdf[cdf.length - 1];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const u = rng.next() * total;
    let lo = 0, hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    out[i] = lo;
  }
  return out;
}

const ok = (r?: AdaptiveRun) => (r?.status === 'ok' ? r : undefined);

/** The ratios of one vocabulary size's runs: only from figures both runs have. */
export function ratiosOf(full?: AdaptiveRun, adaptive?: AdaptiveRun): AdaptiveRatios {
  const out: AdaptiveRatios = {};
  const put = (key: keyof AdaptiveRatios, f?: number, a?: number) => {
    if (f && a) out[key] = a / f;
  };
  put('train', ok(full)?.train?.tokensPerSecond, ok(adaptive)?.train?.tokensPerSecond);
  put('generate', full?.generate?.tokensPerSecond, adaptive?.generate?.tokensPerSecond);
  put('backendPeak', ok(full)?.memory?.end?.backendMiB, ok(adaptive)?.memory?.end?.backendMiB);
  put('rssPeak', ok(full)?.memory?.end?.rssMiB, ok(adaptive)?.memory?.end?.rssMiB);
  return out;
}

/** The report's pairs, from its runs. */
export function pairsOf(runs: AdaptiveRun[]): AdaptiveReport['pairs'] {
  const sizes = [...new Set(runs.map((r) => r.vocabSize))];
  return sizes.map((V) => {
    const of = (s: SoftmaxKind) => runs.find((r) => r.vocabSize === V && r.softmax === s);
    return { vocabSize: V, cutoffs: of('adaptive')?.cutoffs ?? [], ratios: ratiosOf(of('full'), of('adaptive')) };
  });
}

const x = (r?: number) => (r === undefined ? 'no figure' : `${r.toFixed(2)}×`);

/** Issue 24's speed targets, judged on the report's pairs (held null: a quick report, or no such size in it). */
export function adaptiveTargets(rep: Pick<AdaptiveReport, 'pairs' | 'options'>): ServeTarget[] {
  const out: ServeTarget[] = [];
  const judge = (what: 'train' | 'generate', label: string) => {
    for (const [i, t] of ADAPTIVE_TARGETS[what].entries()) {
      const next = ADAPTIVE_TARGETS[what][i + 1]?.from ?? Infinity;
      const pairs = rep.pairs.filter((p) => p.vocabSize >= t.from && p.vocabSize < next);
      const figures = pairs.map((p) => p.ratios[what]);
      out.push({
        what: `${label} adaptive ÷ full ≥ ${t.ratio}× at V ${Number.isFinite(next) ? '' : '≥ '}${t.from.toLocaleString('en-US')}`,
        figure: pairs.length ? pairs.map((p, j) => `V ${p.vocabSize.toLocaleString('en-US')}: ${x(figures[j])}`).join(', ') : 'no such size in this run',
        held: rep.options.quick || !pairs.length ? null : figures.every((f) => f !== undefined && f >= t.ratio),
      });
    }
  };
  judge('train', 'training tokens/s');
  judge('generate', 'generation tokens/s');
  return out;
}
