/**
 * Beam search on the model's network (its own activation memory, so one beam search or evaluate
 * runs at a time per model; Access.network): the prompt is fed in bounded windows, then every
 * step expands each hypothesis by its best tokens, with the hypotheses' states gathered on the
 * device.
 */
import { tensor, type DeviceBuffer, type Tensor } from '../backend/types';
import { DEFAULTS } from '../defaults';
import type { Network } from '../nn/network';
import { Options, signalOf } from '../options';
import { Controls, specials, vocabulary, type TokenControls } from './controls';
import type { InferenceHost } from './host';
import { topTokens } from './sampling';

/** Options of LanguageModel.beamSearch. */
export interface BeamSearchOptions extends Omit<TokenControls, 'prefix'> {
  /** Hypotheses kept at each step, and at most this many returned (integer in [1, 256]). Default 5. */
  beamWidth?: number;
  /** Most tokens per beam (integer >= 1); a tokenizer model's beam also ends at `<eos>`. Default 20. */
  maxTokens?: number;
  /**
   * Length normalisation: beams are ranked by logProb / (number of ids) ** lengthPenalty, so that
   * longer beams are not penalised for their length (0: by logProb; 1: by the mean per token). Default 0.
   */
  lengthPenalty?: number;
  /** Cancels the call (checked at every step): it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** One of beamSearch's continuations: its text, its ids, the sum of their log-probabilities and its rank's score. */
export interface Beam {
  text: string;
  ids: number[];
  logProb: number;
  /** logProb / ids.length ** lengthPenalty (logProb when lengthPenalty is 0). */
  score: number;
}

/** Prompt steps fed to the RNN at once: bounds the scratch that a long prompt needs. */
const PROMPT_WINDOW = 256;

/** The beamWidth best continuations of a prompt (the prompt's ids with the model's start). */
export async function beamSearch(host: InferenceHost, promptIds: Int32Array, options: BeamSearchOptions): Promise<Beam[]> {
  const o = new Options('beamSearch', options, ['beamWidth', 'maxTokens', 'lengthPenalty', 'signal', 'ban', 'logitBias']);
  const W = o.integer('beamWidth', DEFAULTS.beamSearch.beamWidth, { min: 1, max: 256 });
  const maxTokens = o.integer('maxTokens', DEFAULTS.beamSearch.maxTokens, { min: 1, max: 100_000 });
  const alpha = o.number('lengthPenalty', DEFAULTS.beamSearch.lengthPenalty, { min: 0, max: 10 });
  const signal = signalOf('beamSearch', o.raw('signal'));
  const controls = new Controls(o, vocabulary(host));
  const rank = (h: { logProb: number; length: number }) => (alpha === 0 ? h.logProb : h.logProb / Math.max(1, h.length) ** alpha);
  const net = host.network, s = net.stream;
  const { vocabSize: V, layers: L, hiddenSize: H, cell, dtype } = net.config;
  const { eos } = specials(host);
  // The hypotheses form a tree: node k is token tokens[k] after node parents[k] (-1: the prompt);
  // a hypothesis is a node, and its ids are spelled out once, at the end.
  const tokens: number[] = [], parents: number[] = [];
  type Hyp = { node: number; logProb: number; length: number };
  const finished: Hyp[] = [];
  signal?.throwIfAborted();
  let rows = await read(net, prime(net, promptIds));
  let beams: Hyp[] = [{ node: -1, logProb: 0, length: 0 }];
  // Scratch of the state gather: which row each new state comes from, and the gathered states.
  const from = s.alloc('i32', L * W), gathered = s.alloc(dtype, (cell === 'lstm' ? 2 : 1) * L * W * H);
  try {
    for (let step = 0; step < maxTokens; step++) {
      signal?.throwIfAborted();
      // Expand every beam by its W best tokens; keep the W best overall (by logProb: the
      // normalisation ranks whole beams, as each beam's length only grows).
      const cands: { parent: number; id: number; logProb: number }[] = [];
      beams.forEach((b, i) => {
        const row = controls.adjust(rows.subarray(i * V, (i + 1) * V), false);
        for (const t of topTokens(row, W, controls.exclude)) cands.push({ parent: i, id: t.id, logProb: b.logProb + rows[i * V + t.id] });
      });
      cands.sort((a, b) => b.logProb - a.logProb);
      const next: { parent: number; hyp: Hyp }[] = [];
      const B0 = beams.length;
      for (const c of cands.slice(0, W)) {
        const parent = beams[c.parent];
        if (c.id === eos) {
          finished.push({ node: parent.node, logProb: c.logProb, length: parent.length });
        } else {
          tokens.push(c.id);
          parents.push(parent.node);
          next.push({ parent: c.parent, hyp: { node: tokens.length - 1, logProb: c.logProb, length: parent.length + 1 } });
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
    .map((h) => ({ h, score: rank(h) }))
    .sort((a, b) => b.score - a.score)
    .slice(0, W)
    .map(({ h, score }) => {
      const ids = idsOf(h.node);
      return { text: host.decode(ids), ids, logProb: h.logProb, score };
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
function prime(net: Network, ids: Int32Array): Tensor {
  net.resetState(1);
  feed(net, ids.subarray(0, ids.length - 1));
  const last = ids.subarray(ids.length - 1);
  return net.logProbs(last, 1, 1);
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
      net.embed(window, tensor(f, 0, [n, E]));
      s.rnnForward(net.rnn, {
        x: tensor(f, 0, [n, 1, E]), y: tensor(f, w * E, [n, 1, H]), hx: st.hx, cx: st.cx, hy: st.hy, cy: st.cy,
        ...net.rnnArgs, reserve: tensor(f, w * (E + H), [sp.reserve]),
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
