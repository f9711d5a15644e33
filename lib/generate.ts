/**
 * Inference of a LanguageModel: next-token prediction, sampling (generate) and beam search on
 * its network. The model hands in what they need (InferenceHost) and guards them (one operation
 * at a time, ERR_DISPOSED); the options and errors here are the model's public contract.
 */
import { tensor, type DeviceBuffer, type Tensor } from './backend/types';
import { invalidArgument } from './errors';
import type { Beam, GenerateOptions, Prediction } from './model';
import type { Network } from './nn/network';
import { Options } from './options';
import { sampleToken, topTokens } from './sampling';
import { EOS_ID, PAD_ID, SOS_ID, type Tokenizer } from './tokenizers';
import { Random } from './util/random';

export interface InferenceHost {
  readonly network: Network;
  readonly tokenizer?: Tokenizer;
  /** A prompt's ids, <sos> in front for models trained on sentences; throws on bad input. */
  promptIds(prompt: unknown, what: string): Int32Array;
  decode(ids: number[]): string;
  /** The model's ring of sampled ids on the device (made on first use, freed with the model). */
  ring(): DeviceBuffer;
}

/** Never predicted, sampled or searched. */
const EXCLUDE: ReadonlySet<number> = new Set([PAD_ID, SOS_ID]);

/** The topK most likely next tokens after a context, with their probabilities. */
export async function predictNext(host: InferenceHost, context: unknown, options: unknown): Promise<Prediction[]> {
  const net = host.network;
  const topK = new Options('predictNext', options, ['topK']).integer('topK', 5, { min: 1, max: net.config.vocabSize });
  const row = await prime(net, host.promptIds(context, 'predictNext context'));
  return topTokens(row, topK, EXCLUDE).map(({ id, logProb }) => ({
    token: host.tokenizer ? host.tokenizer.tokenOf(id) : String(id),
    id,
    probability: Math.exp(logProb),
  }));
}

/** Continues a prompt by sampling; resolves with the generated text (the prompt not included). */
export async function generate(host: InferenceHost, options: GenerateOptions): Promise<string> {
  const net = host.network;
  const o = new Options('generate', options, ['prompt', 'maxTokens', 'temperature', 'topK', 'topP', 'seed', 'stop', 'stopAtEos']);
  const maxTokens = o.integer('maxTokens', 100, { min: 1, max: 1_000_000 });
  const sampling = {
    temperature: o.number('temperature', 1, { min: 0, max: 100 }),
    topK: o.integer('topK', 0, { min: 0, max: net.config.vocabSize }),
    topP: o.number('topP', 1, { min: 0, max: 1, exclusiveMin: true }),
  };
  const rng = new Random(o.integer('seed', Math.floor(Math.random() * 2 ** 31), { min: 0, max: 2 ** 31 - 1 }));
  const stopRaw = o.raw('stop');
  const stops = stopRaw === undefined ? [] : typeof stopRaw === 'string' ? [stopRaw] : stopRaw;
  if (!Array.isArray(stops) || !stops.every((s) => typeof s === 'string' && s.length > 0)) {
    throw invalidArgument('generate: stop must be a non-empty string or an array of them');
  }
  const stopAtEos = o.boolean('stopAtEos', true);
  const promptIds = host.promptIds(o.raw('prompt'), 'generate prompt');
  const out: number[] = [];
  /** Appends a token; true when generation is over (<eos> or a stop string). */
  let stopped: string | undefined;
  const accept = (next: number): boolean => {
    if (next === EOS_ID && stopAtEos) return true;
    out.push(next);
    if (stops.length > 0) {
      const text = host.decode(out);
      const at = Math.min(...stops.map((s) => (text.includes(s) ? text.indexOf(s) : Infinity)));
      if (at < Infinity) return (stopped = text.slice(0, at)), true;
    }
    return false;
  };
  if (net.backend.device === 'cuda' && (sampling.topK > 0 || sampling.topP < 1)) {
    // Top-k / top-p on the host: one row of log-probabilities copied per token.
    let row = await prime(net, promptIds);
    for (let i = 0; i < maxTokens; i++) {
      if (accept(sampleToken(row, sampling, rng, EXCLUDE))) break;
      if (i === maxTokens - 1) break;
      net.carryState();
      row = await lastRows(net, net.logProbs(Int32Array.of(out[out.length - 1]), 1, 1), 1, 1);
    }
    return stopped ?? host.decode(out);
  }
  // On the device: each sampled id feeds the next step directly, a chunk of tokens (4, 8, ...
  // 256) per queued op; the host reads a chunk's ids while the next chunk is already queued,
  // so the stream never waits for JavaScript. Work queued past <eos> or a stop string is discarded.
  const s = net.stream, ring = host.ring(), RING = ring.length;
  const excludeIds = Int32Array.from(EXCLUDE);
  net.resetState(1);
  const T = promptIds.length, V = net.config.vocabSize;
  const first = net.logits(promptIds, T, 1);
  let logits = tensor(first.buffer, first.offset + (T - 1) * V, [1, V]);
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
      return stopped ?? host.decode(out);
    }
  }
  return host.decode(out);
}

/** The beamWidth most likely continuations of a prompt (log-probabilities summed over tokens). */
export async function beamSearch(host: InferenceHost, prompt: unknown, options: unknown): Promise<Beam[]> {
  const o = new Options('beamSearch', options, ['beamWidth', 'maxTokens']);
  const W = o.integer('beamWidth', 5, { min: 1, max: 256 });
  const maxTokens = o.integer('maxTokens', 20, { min: 1, max: 100_000 });
  const net = host.network, s = net.stream;
  const { vocabSize: V, layers: L, hiddenSize: H, cell } = net.config;
  const lstm = cell === 'lstm';
  type Hyp = { ids: number[]; logProb: number };
  const finished: Hyp[] = [];
  let rows = await prime(net, host.promptIds(prompt, 'beamSearch prompt'));
  let beams: Hyp[] = [{ ids: [], logProb: 0 }];
  for (let step = 0; step < maxTokens; step++) {
    // Expand every beam by its W best tokens; keep the W best overall.
    const cands: { parent: number; id: number; logProb: number }[] = [];
    beams.forEach((b, i) => {
      for (const t of topTokens(rows.subarray(i * V, (i + 1) * V), W, EXCLUDE)) cands.push({ parent: i, id: t.id, logProb: b.logProb + t.logProb });
    });
    cands.sort((a, b) => b.logProb - a.logProb);
    const next: { parent: number; hyp: Hyp }[] = [];
    for (const c of cands.slice(0, W)) {
      const hyp = { ids: [...beams[c.parent].ids, c.id], logProb: c.logProb };
      if (c.id === EOS_ID) finished.push({ ids: hyp.ids.slice(0, -1), logProb: hyp.logProb });
      else next.push({ parent: c.parent, hyp });
    }
    if (next.length === 0 || finished.length >= W || step === maxTokens - 1) {
      beams = next.map((n) => n.hyp);
      break;
    }
    // The new beams continue from their parents' states.
    const old = net.state(beams.length);
    const [hy, cy] = await Promise.all([s.read(old.hy), lstm ? s.read(old.cy) : Promise.resolve(null)]);
    const B = next.length;
    const gather = (src: ArrayLike<number>) => {
      const out = new Float32Array(L * B * H);
      for (let l = 0; l < L; l++)
        next.forEach((n, b) => out.set((src as Float32Array).subarray((l * beams.length + n.parent) * H, (l * beams.length + n.parent + 1) * H), (l * B + b) * H));
      return out;
    };
    const st = net.state(B);
    s.write(st.hx, gather(hy));
    if (cy) s.write(st.cx, gather(cy));
    beams = next.map((n) => n.hyp);
    rows = await lastRows(net, net.logProbs(Int32Array.from(beams.map((b) => b.ids[b.ids.length - 1])), 1, B), 1, B);
  }
  return [...finished, ...beams]
    .sort((a, b) => b.logProb - a.logProb)
    .slice(0, W)
    .map((h) => ({ text: host.decode(h.ids), ids: h.ids, logProb: h.logProb }));
}

/** Runs ids through the network from a zero state (batch of 1); returns the last row of log-probabilities. */
async function prime(net: Network, ids: Int32Array): Promise<Float32Array> {
  net.resetState(1);
  const lp = net.logProbs(ids, ids.length, 1);
  return lastRows(net, lp, ids.length, 1);
}

async function lastRows(net: Network, lp: Tensor, T: number, B: number): Promise<Float32Array> {
  const V = net.config.vocabSize;
  return (await net.stream.read(tensor(lp.buffer, lp.offset + (T - 1) * B * V, [B * V]))) as Float32Array;
}
