/**
 * Inference of a LanguageModel: next-token prediction, sampling (generate) and beam search on
 * its network. The model hands in what they need (InferenceHost) and guards them (one operation
 * at a time, ERR_DISPOSED); the options and errors here are the model's public contract.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { tensor, type DeviceBuffer, type Tensor } from './backend/types';
import { DEFAULTS } from './defaults';
import { invalidArgument } from './errors';
import type { TokenIds } from './inputs';
import type { Network } from './nn/network';
import { Options } from './options';
import { sampleToken, topTokens } from './sampling';
import { EOS_ID, PAD_ID, SOS_ID, type Tokenizer } from './tokenizers';
import { Random } from './util/random';

/** One of predictNext's tokens. */
export interface Prediction {
  token: string;
  id: number;
  probability: number;
}

/** Options of LanguageModel.predictNext. */
export interface PredictOptions {
  /** How many of the most likely tokens (integer in [1, vocabSize]). Default 5. */
  topK?: number;
}

/** Options of LanguageModel.generate. */
export interface GenerateOptions {
  /**
   * Text (or token ids) to continue. Default: none, which only a model trained on sentences with
   * a tokenizer accepts (it starts a sentence); the others need at least one token.
   */
  prompt?: string | TokenIds;
  /** Most tokens to generate (integer >= 1). Default 100. */
  maxTokens?: number;
  /** Softmax temperature in [0, 100]: 0 is greedy, < 1 sharper, > 1 flatter. Default 1. */
  temperature?: number;
  /** Sample among the k most likely tokens; 0 for all. Default 0. */
  topK?: number;
  /** Nucleus sampling: the smallest set of tokens holding this much probability, in (0, 1]. Default 1 (all). */
  topP?: number;
  /** Seed of the sampler (integer in [0, 2^31 - 1]): the same seed draws the same tokens. Default: a random one. */
  seed?: number;
  /** End before the first occurrence of this string (or of any of these), which is left out. Default: none. */
  stop?: string | string[];
  /** A tokenizer model ends at a sampled `<eos>` (default true); false: it goes on through sentence ends for maxTokens. */
  stopAtEos?: boolean;
}

/** Options of LanguageModel.beamSearch. */
export interface BeamSearchOptions {
  /** Hypotheses kept at each step, and at most this many returned (integer in [1, 256]). Default 5. */
  beamWidth?: number;
  /** Most tokens per beam (integer >= 1); a tokenizer model's beam also ends at `<eos>`. Default 20. */
  maxTokens?: number;
}

/** One of beamSearch's continuations: its text, its ids and the sum of their log-probabilities. */
export interface Beam {
  text: string;
  ids: number[];
  logProb: number;
}

export interface InferenceHost {
  readonly network: Network;
  readonly tokenizer?: Tokenizer;
  /** A prompt's ids, <sos> in front for models trained on sentences; throws on bad input. */
  promptIds(prompt: unknown, what: string): Int32Array;
  decode(ids: number[]): string;
  /** The model's ring of sampled ids on the device (made on first use, freed with the model). */
  ring(): DeviceBuffer;
}

/**
 * The special ids of a model: with a tokenizer, <pad> and <sos> are never predicted, sampled or
 * searched and <eos> ends a sentence; with token ids no id is special (the user's vocabulary).
 */
function specials(host: InferenceHost): { exclude: ReadonlySet<number>; eos?: number } {
  return host.tokenizer ? { exclude: new Set([PAD_ID, SOS_ID]), eos: EOS_ID } : { exclude: new Set() };
}
/** Prompt steps fed to the RNN at once: bounds the scratch that a long prompt needs. */
const PROMPT_WINDOW = 256;

/** The topK most likely next tokens after a context, with their probabilities. */
export async function predictNext(host: InferenceHost, context: unknown, options: PredictOptions): Promise<Prediction[]> {
  const net = host.network;
  const topK = new Options('predictNext', options, ['topK']).integer('topK', DEFAULTS.predictNext.topK, { min: 1, max: net.config.vocabSize });
  const row = await read(net, prime(net, host.promptIds(context, 'predictNext context'), true));
  return topTokens(row, topK, specials(host).exclude).map(({ id, logProb }) => ({
    token: host.tokenizer ? host.tokenizer.tokenOf(id) : String(id),
    id,
    probability: Math.exp(logProb),
  }));
}

/** Continues a prompt by sampling; resolves with the generated text (the prompt not included). */
export async function generate(host: InferenceHost, options: GenerateOptions): Promise<string> {
  const net = host.network;
  const o = new Options('generate', options, ['prompt', 'maxTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'stopAtEos']);
  const maxTokens = o.integer('maxTokens', DEFAULTS.generate.maxTokens, { min: 1, max: 1_000_000 });
  const sampling = {
    temperature: o.number('temperature', DEFAULTS.generate.temperature, { min: 0, max: 100 }),
    topK: o.integer('topK', DEFAULTS.generate.topK, { min: 0, max: net.config.vocabSize }),
    topP: o.number('topP', DEFAULTS.generate.topP, { min: 0, max: 1, exclusiveMin: true }),
  };
  const rng = new Random(o.integer('seed', Math.floor(Math.random() * 2 ** 31), { min: 0, max: 2 ** 31 - 1 }));
  const stopRaw = o.raw('stop');
  const stops = stopRaw === undefined ? [] : typeof stopRaw === 'string' ? [stopRaw] : stopRaw;
  if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string' && s.length > 0)) {
    throw invalidArgument('generate: stop must be a non-empty string or an array of them');
  }
  const stopAtEos = o.boolean('stopAtEos', DEFAULTS.generate.stopAtEos);
  const promptIds = host.promptIds(o.raw('prompt'), 'generate prompt');
  const { exclude, eos } = specials(host);
  const out: number[] = [];
  const matcher = stops.length > 0 ? new StopMatcher(stops, host.decode) : undefined;
  /** Where the first stop string starts in the text, once there is one. */
  let cut = -1;
  /** Appends a token; true when generation is over (<eos> or a stop string). */
  const accept = (next: number): boolean => {
    if (next === eos && stopAtEos) return true;
    out.push(next);
    if (matcher) cut = matcher.push(next);
    return cut >= 0;
  };
  const text = () => (cut >= 0 ? host.decode(out).slice(0, cut) : host.decode(out));
  if (net.backend.device === 'cuda' && (sampling.topK > 0 || sampling.topP < 1)) {
    // Top-k / top-p on the host: one row of log-probabilities copied per token.
    let row = await read(net, prime(net, promptIds, true));
    for (let i = 0; i < maxTokens; i++) {
      if (accept(sampleToken(row, sampling, rng, exclude))) break;
      if (i === maxTokens - 1) break;
      net.carryState();
      row = await read(net, net.logProbs(Int32Array.of(out[out.length - 1]), 1, 1));
    }
    return text();
  }
  // On the device: each sampled id feeds the next step directly, a chunk of tokens (4, 8, ...
  // 256) per queued op; the host reads a chunk's ids while the next chunk is already queued,
  // so the stream never waits for JavaScript. Work queued past <eos> or a stop string is discarded.
  const s = net.stream, ring = host.ring(), RING = ring.length;
  const excludeIds = Int32Array.from(exclude);
  let logits = prime(net, promptIds, false);
  let queued = 0, chunk = 4;
  const reads: Promise<Int32Array>[] = [];
  const queueChunk = () => {
    const start = queued % RING;
    const n = Math.min(chunk, maxTokens - queued, RING - start);
    const seeds = Float64Array.from({ length: n }, () => rng.seed());
    logits = net.generateOnDevice(logits, tensor(ring, start, [n]), seeds, sampling, excludeIds, queued + n === maxTokens);
    queued += n;
    const ids = s.read(tensor(ring, start, [n])) as Promise<Int32Array>;
    // Awaited below in order; when generate ends before (dispose, an error) it must not go unhandled.
    ids.catch(() => {});
    reads.push(ids);
    chunk = Math.min(chunk * 2, RING / 2);
  };
  queueChunk();
  while (reads.length > 0) {
    if (queued < maxTokens) queueChunk();
    const ids = await reads.shift()!;
    for (const id of ids) {
      if (!accept(id)) continue;
      await Promise.allSettled(reads); // leave nothing in flight
      return text();
    }
    // A read done before it is awaited resumes at once: let timers and I/O in between chunks.
    await nextTurn();
  }
  return text();
}

/** The beamWidth most likely continuations of a prompt (log-probabilities summed over tokens). */
export async function beamSearch(host: InferenceHost, prompt: unknown, options: BeamSearchOptions): Promise<Beam[]> {
  const o = new Options('beamSearch', options, ['beamWidth', 'maxTokens']);
  const W = o.integer('beamWidth', DEFAULTS.beamSearch.beamWidth, { min: 1, max: 256 });
  const maxTokens = o.integer('maxTokens', DEFAULTS.beamSearch.maxTokens, { min: 1, max: 100_000 });
  const net = host.network, s = net.stream;
  const { vocabSize: V, layers: L, hiddenSize: H, cell, dtype } = net.config;
  const { exclude, eos } = specials(host);
  // The hypotheses form a tree: node k is token tokens[k] after node parents[k] (-1: the prompt);
  // a hypothesis is a node, and its ids are spelled out once, at the end.
  const tokens: number[] = [], parents: number[] = [];
  type Hyp = { node: number; logProb: number };
  const finished: Hyp[] = [];
  let rows = await read(net, prime(net, host.promptIds(prompt, 'beamSearch prompt'), true));
  let beams: Hyp[] = [{ node: -1, logProb: 0 }];
  // Scratch of the state gather: which row each new state comes from, and the gathered states.
  const from = s.alloc('i32', L * W), gathered = s.alloc(dtype, (cell === 'lstm' ? 2 : 1) * L * W * H);
  try {
    for (let step = 0; step < maxTokens; step++) {
      // Expand every beam by its W best tokens; keep the W best overall.
      const cands: { parent: number; id: number; logProb: number }[] = [];
      beams.forEach((b, i) => {
        for (const t of topTokens(rows.subarray(i * V, (i + 1) * V), W, exclude)) cands.push({ parent: i, id: t.id, logProb: b.logProb + t.logProb });
      });
      cands.sort((a, b) => b.logProb - a.logProb);
      const next: { parent: number; hyp: Hyp }[] = [];
      const B0 = beams.length;
      for (const c of cands.slice(0, W)) {
        const node = beams[c.parent].node;
        if (c.id === eos) {
          finished.push({ node, logProb: c.logProb });
        } else {
          tokens.push(c.id);
          parents.push(node);
          next.push({ parent: c.parent, hyp: { node: tokens.length - 1, logProb: c.logProb } });
        }
      }
      beams = next.map((n) => n.hyp);
      if (next.length === 0 || finished.length >= W || step === maxTokens - 1) break;
      continueFrom(net, B0, next.map((n) => n.parent), from, gathered);
      rows = await read(net, net.logProbs(Int32Array.from(beams, (b) => tokens[b.node]), 1, beams.length));
    }
  } finally {
    from.free();
    gathered.free();
  }
  const idsOf = (node: number) => {
    const ids: number[] = [];
    for (let k = node; k >= 0; k = parents[k]) ids.push(tokens[k]);
    return ids.reverse();
  };
  return [...finished, ...beams]
    .sort((a, b) => b.logProb - a.logProb)
    .slice(0, W)
    .map((h) => {
      const ids = idsOf(h.node);
      return { text: host.decode(ids), ids, logProb: h.logProb };
    });
}

/**
 * Beam search: the next step's sequence b continues from sequence parents[b] of the last step (B0
 * sequences). The last step's final states hy (and cy) are gathered on the device, by an embedding
 * lookup that takes their rows as its table, into the next step's initial states hx (and cx).
 */
function continueFrom(net: Network, B0: number, parents: number[], from: DeviceBuffer, gathered: DeviceBuffer): void {
  const { layers: L, hiddenSize: H, cell } = net.config, s = net.stream;
  const B = parents.length, last = net.state(B0);
  const rows = tensor(from, 0, [L * B]);
  s.write(rows, Int32Array.from({ length: L * B }, (_, k) => Math.floor(k / B) * B0 + parents[k % B]));
  const pairs = cell === 'lstm' ? ([[last.hy, 'hx'], [last.cy, 'cx']] as const) : ([[last.hy, 'hx']] as const);
  pairs.forEach(([src], j) => s.embeddingForward(tensor(src.buffer, src.offset, [L * B0, H]), rows, tensor(gathered, j * L * B * H, [L * B, H])));
  const next = net.state(B); // zeroed when B changes, after the gather in stream order
  pairs.forEach(([, dst], j) => s.copy(tensor(gathered, j * L * B * H, [L, B, H]), next[dst]));
}

/**
 * From a zero state (batch 1), runs a prompt: its state is left for the next step, and its last
 * position's distribution returned on the device ([1, V], log-probabilities or logits), valid until
 * the next call. Only that position goes through the decoder (all of them would take T x V).
 */
function prime(net: Network, ids: Int32Array, logSoftmax: boolean): Tensor {
  net.resetState(1);
  feed(net, ids.subarray(0, ids.length - 1));
  const last = ids.subarray(ids.length - 1);
  return logSoftmax ? net.logProbs(last, 1, 1) : net.logits(last, 1, 1);
}

/**
 * Feeds ids (batch 1) through embedding and RNN, without the decoder, from the state in hx/cx,
 * and leaves the state after them in hx/cx. Windows of PROMPT_WINDOW steps bound the scratch,
 * which is freed here: the memory a long prompt takes comes back.
 */
function feed(net: Network, ids: Int32Array): void {
  if (ids.length === 0) return;
  const { embeddingSize: E, hiddenSize: H, dtype } = net.config, s = net.stream;
  const w = Math.min(ids.length, PROMPT_WINDOW), st = net.state(1);
  // The spaces of a full window and of the last, shorter one (not assumed to be smaller).
  const spaces = [net.rnn.spaces(w, 1), net.rnn.spaces(ids.length % w || w, 1)];
  const sp = { reserve: Math.max(...spaces.map((x) => x.reserve)), workspace: Math.max(...spaces.map((x) => x.workspace)) };
  const f = s.alloc(dtype, w * (E + H) + sp.reserve + sp.workspace);
  const at = s.alloc('i32', w);
  try {
    for (let t = 0; t < ids.length; t += w) {
      const n = Math.min(w, ids.length - t), window = tensor(at, 0, [n]);
      s.write(window, ids.subarray(t, t + n));
      s.embeddingForward(net.param('encoder.weight'), window, tensor(f, 0, [n, E]));
      s.rnnForward(net.rnn, {
        x: tensor(f, 0, [n, 1, E]), y: tensor(f, w * E, [n, 1, H]), hx: st.hx, cx: st.cx, hy: st.hy, cy: st.cy,
        weights: net.rnnWeights, reserve: tensor(f, w * (E + H), [sp.reserve]),
        workspace: tensor(f, w * (E + H) + sp.reserve, [sp.workspace]), training: false,
      });
      net.carryState();
    }
  } finally {
    f.free();
    at.free();
  }
}

async function read(net: Network, t: Tensor): Promise<Float32Array> {
  return (await net.stream.read(t)) as Float32Array;
}

/**
 * Finds the first stop string in the text of the tokens so far as they arrive, looking at the
 * text each token adds and the (longest stop - 1) characters before it: a stop string may span
 * tokens, and the cost per token does not grow with the text. This relies on what decode does
 * with both tokenizers (and with ids joined by spaces): the text only grows at its end, and what
 * a token adds depends only on it and on the last token before it that shows (specials show nothing).
 */
class StopMatcher {
  private tail = '';
  /** Length of the whole text so far. */
  private length = 0;
  private last?: { id: number; text: string };
  private readonly keep: number;

  constructor(
    private readonly stops: string[],
    private readonly decode: (ids: number[]) => string,
  ) {
    this.keep = stops.reduce((n, s) => Math.max(n, s.length), 0) - 1;
  }

  /** Adds a token; where the first stop string starts in the whole text once there is one, else -1. */
  push(id: number): number {
    const alone = this.decode([id]);
    if (alone === '') return -1;
    const added = this.last ? this.decode([this.last.id, id]).slice(this.last.text.length) : alone;
    this.last = { id, text: alone };
    const window = this.tail + added;
    let at = Infinity;
    for (const stop of this.stops) {
      const i = window.indexOf(stop);
      if (i >= 0 && i < at) at = i;
    }
    if (at < Infinity) return this.length - this.tail.length + at;
    this.length += added.length;
    this.tail = window.slice(Math.max(0, window.length - this.keep));
    return -1;
  }
}
