/**
 * Continuous batching: the inference requests of one model (next-token distributions, sampling,
 * scoring, session feeds) share native steps. Each request owns a row of the recurrent state
 * (rows.ts); requests join and leave between steps. A loop of iterations, each:
 *
 *   1. decode step: every decoding row feeds the token it drew last iteration (T = 1, B rows)
 *   2. prefill step: every feeding row feeds its next chunk of at most PREFILL_CHUNK tokens (one
 *      rnnForward over the rows, padded to the longest chunk), so a long prompt never stalls the
 *      others; the log-probabilities of scored tokens are gathered on the device
 *   3. rows leave (done, cancelled) and join (new requests, finished prompts): a re-layout
 *   4. decode: the distribution of every decoding row from its state (decoder of the top layer),
 *      then each row's draw (its own options and seed) on the device, or its row read for the host
 *   5. one round of reads; the host hands the results to their requests
 *
 * A request computes the same numbers alone as batched: rows never mix (padding is masked) and
 * each row's draw depends only on its request's seed. Only the matrix products' rounding may
 * differ with the batch size.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import { tensor } from '../backend/types';
import { RnnlmError } from '../errors';
import { StepGraphs, graphsEnabled } from '../nn/graphs';
import type { Network } from '../nn/network';
import { chunkKey, packSeeds, padIdle, sampleRuns, type Draw } from './draws';
import type { Active, Job } from './job';
import { RowGroup, bucketOf, copyState, type StateRef, type StateShape } from './rows';

/** Tokens a feeding row feeds per step. */
export const PREFILL_CHUNK = 32;
/**
 * Every product of the requests' rows in an order that does not depend on the batch (the CPU's
 * batch-invariant GEMM): a request's numbers are the same bits batched as alone, so a draw never
 * flips with the load. (cuBLAS and cuDNN do not promise it: on a GPU they agree to rounding.)
 */
const INVARIANT = { batchInvariant: true };
/**
 * Decoding steps queued per round trip to the host, when nothing waits to join: as many as fit in
 * STEPS_MS of measured step time (a request arriving meanwhile waits at most about that), at most
 * MAX_STEPS. The device idles while the host takes a round's tokens and queues the next: at 64,
 * a small model's batch-1 steps (60 us on the CPU) fill STEPS_MS (int8 zaremba-small: +4 % tokens/s
 * over 32, measured side by side).
 */
const MAX_STEPS = 64;
const STEPS_MS = 4;

export type { Draw } from './draws';

/** The runtime's load: requests waiting for a row, and rows stepping (decoding and prefilling). */
export interface RuntimeStats {
  queued: number;
  rows: number;
}

export type { Job } from './job';

export interface SchedulerOptions {
  /** Rows stepped together at most (1: requests one at a time, in arrival order). */
  maxRows: number;
}

export class Scheduler {
  private readonly queue: Active[] = [];
  private dec: Active[] = [];
  private pre: Active[] = [];
  private readonly decRows: RowGroup;
  private readonly preRows: RowGroup;
  /** Jobs that left their rows this iteration and end once its reads are in (scores, saved states). */
  private ending: Active[] = [];
  private running = false;
  /** Jobs by the signal that cancels them. */
  private readonly watched = new WeakMap<AbortSignal, Set<Active>>();
  /** Milliseconds per decoding step of the last iterations (a moving average), which sizes multi-step iterations. */
  private stepMs = 1;
  /** Where in the decoding rows' ids scratch the tokens to feed next are. */
  private idsAt = 0;
  /** The next iteration's decode step is already queued (see iteration). */
  private stepped = false;
  private disposed = false;
  private readonly shape: StateShape;
  /** Decoding chunks captured as graphs (draws.ts): opt-in (RNNLM_GRAPHS=1) until a GPU run verifies them. */
  private readonly graphs?: StepGraphs;

  constructor(
    private readonly net: Network,
    private readonly options: SchedulerOptions,
  ) {
    const c = net.config;
    this.shape = { layers: c.layers, hiddenSize: c.hiddenSize, cell: c.cell === 'lstm', dtype: c.dtype };
    this.decRows = new RowGroup(net.stream, this.shape);
    this.preRows = new RowGroup(net.stream, this.shape);
    if (graphsEnabled()) this.graphs = new StepGraphs(net.stream);
  }

  get stateShape(): StateShape {
    return this.shape;
  }

  /** Requests queued or running. */
  get load(): number {
    return this.queue.length + this.dec.length + this.pre.length;
  }

  /** Requests not yet given a row, and rows of requests not over. */
  get stats(): RuntimeStats {
    const live = (rows: Active[]) => rows.reduce((n, a) => n + (a.ended ? 0 : 1), 0);
    return { queued: this.queue.length, rows: live(this.dec) + live(this.pre) };
  }

  /** Queues a job; its resolve or reject is called exactly once. */
  submit(job: Job): void {
    if (this.disposed) return job.reject(new RnnlmError('ERR_DISPOSED', 'this model was disposed; load or create a new one'));
    if (job.signal?.aborted) return job.reject(job.signal.reason);
    const a: Active = { job, fed: 0, scores: [], drawn: 0, ended: false, finishing: false, committed: false };
    if (job.signal) this.watch(job.signal, a);
    this.queue.push(a);
    if (!this.running) {
      this.running = true;
      // Started after this turn of the event loop: requests that arrive together (one tick of
      // calls, or one poll phase of HTTP requests) are admitted in the same first step.
      setImmediate(() => void this.loop());
    }
  }

  /**
   * One abort listener per signal, however many jobs share it (a score of 30,000 texts): an abort
   * ends them all in one pass. Queued jobs leave now; running ones at the next re-layout.
   */
  private watch(signal: AbortSignal, a: Active): void {
    let jobs = this.watched.get(signal);
    if (!jobs) {
      const all = (jobs = new Set<Active>());
      this.watched.set(signal, all);
      signal.addEventListener('abort', () => {
        const gone = new Set([...all].filter((x) => !x.committed));
        if (gone.size === 0) return;
        for (let i = this.queue.length - 1; i >= 0; i--) if (gone.has(this.queue[i])) this.queue.splice(i, 1);
        for (const x of gone) this.end(x, { error: signal.reason });
      }, { once: true });
    }
    jobs.add(a);
    // The set and its one listener live as long as the signal (a WeakMap key), so a long-lived
    // signal shared by many calls gets one listener, not one per call.
    a.unwatch = () => jobs.delete(a);
  }

  /**
   * Ends a job now: its callbacks are not called again. A job whose final state was already
   * written to its session (committed) is not cancelled any more: the session must match the answer.
   */
  private end(a: Active, failure?: { error: unknown }): void {
    if (a.ended) return;
    a.ended = true;
    a.unwatch?.();
    if (failure) a.job.reject(failure.error);
    else a.job.resolve(a.scores);
  }

  private async loop(): Promise<void> {
    try {
      while (!this.disposed && this.load > 0) {
        try {
          await this.iteration();
        } catch (e) {
          // A failed op (the stream's sticky error) ends every running job; the rows start over.
          for (const a of [...this.dec, ...this.pre, ...this.ending.splice(0)]) this.end(a, { error: e });
          this.dec = [];
          this.pre = [];
          this.decRows.dispose();
          this.preRows.dispose();
        }
        // A turn of the event loop between iterations: the reads that end one arrive through the
        // addon's thread-safe function, which runs queued completions back to back, and its
        // microtasks would start the next iteration at once, starving timers and I/O.
        await nextTurn();
      }
    } finally {
      this.running = false;
    }
  }

  private async iteration(): Promise<void> {
    const net = this.net, s = net.stream;
    const { embeddingSize: E, hiddenSize: H, vocabSize: V } = net.config;
    const reads: Promise<void>[] = [];
    const track = <T>(p: Promise<T>, use: (v: T) => void) => {
      p.catch(() => {}); // awaited below with the others
      reads.push(p.then(use));
    };

    // 1. Decoding rows feed the tokens they drew.
    if (this.dec.length > 0 && !this.stepped) this.step(this.idsAt);
    this.stepped = false;

    // 2. Feeding rows feed their next chunk, and score it.
    if (this.pre.length > 0) this.prefill(track);

    // 3. Rows leave and join.
    this.regroup();

    // 4. The next token's distribution of every decoding row, and its draw.
    const { steps, deviceFed } = this.dec.length > 0 ? this.decode(track) : { steps: 0, deviceFed: false };
    if (steps === 0 && reads.length === 0) reads.push(s.sync());
    // When every token to feed next is already on the device (no host draw writes one later), the
    // next iteration's decode step is queued now: the device runs it while the host hands out this
    // iteration's results and answers its I/O, instead of after. A row that ends meanwhile is fed
    // once more, as it is anyway (step 1 runs before the rows leave).
    if (steps > 0 && deviceFed) {
      this.step(this.idsAt);
      this.stepped = true;
    }

    const t0 = performance.now();
    await Promise.all(reads);
    if (steps > 0) this.stepMs = 0.8 * this.stepMs + 0.2 * ((performance.now() - t0) / steps);
    for (const a of this.ending.splice(0)) this.end(a);
  }

  private prefill(track: <T>(p: Promise<T>, use: (v: T) => void) => void): void {
    const net = this.net, s = net.stream, g = this.preRows;
    const { embeddingSize: E, hiddenSize: H } = net.config;
    const B = this.pre.length;
    const lens = Int32Array.from(this.pre, (a) => Math.min(PREFILL_CHUNK, a.job.feed.length - a.fed));
    const T = Math.max(...lens);
    const ids = new Int32Array(T * B);
    this.pre.forEach((a, b) => {
      for (let t = 0; t < lens[b]; t++) ids[t * B + b] = a.job.feed[a.fed + t];
    });
    // y' = [T + 1, B, H]: slot 0 the initial state's top layer (for scores before the first token), then the RNN's outputs.
    const yAll = g.f('y', (T + 1) * B * H);
    const x = g.f('x', T * B * E);
    const at = g.i32('ids', T * B);
    s.write(at, ids);
    // What is scored: (row, slot in y') pairs and their targets.
    const rows: Active[] = [], slots: number[] = [], targets: number[] = [];
    this.pre.forEach((a, b) => {
      if (a.fed === 0 && a.job.pre >= 0) {
        rows.push(a);
        slots.push(b);
        targets.push(a.job.pre);
      }
      const tg = a.job.targets;
      if (tg) {
        for (let t = 0; t < lens[b]; t++) {
          if (tg[a.fed + t] < 0) continue;
          rows.push(a);
          slots.push((t + 1) * B + b);
          targets.push(tg[a.fed + t]);
        }
      }
    });
    if (slots.some((k) => k < B)) s.copy(g.top(), tensor(yAll.buffer, 0, [B, H]));
    net.embed(at, tensor(x.buffer, 0, [T * B, E]));
    const sp = net.rnn.spaces(T, B);
    s.rnnForward(net.rnn, {
      x: tensor(x.buffer, 0, [T, B, E]), y: tensor(yAll.buffer, B * H, [T, B, H]),
      hx: g.current(0), cx: this.shape.cell ? g.current(1) : null, hy: g.next(0), cy: this.shape.cell ? g.next(1) : null,
      ...net.rnnArgs, reserve: g.f('reserve', sp.reserve), workspace: g.f('workspace', sp.workspace),
      lengths: lens, training: false, batchInvariant: true,
    });
    g.swap();
    this.pre.forEach((a, b) => (a.fed += lens[b]));
    // The scored positions through the decoder, in passes that bound the [n, V] scratch.
    const V = net.config.vocabSize;
    const P = Math.max(1, Math.min(4096, Math.floor(2 ** 22 / V)));
    for (let k0 = 0; k0 < slots.length; k0 += P) {
      const n = Math.min(P, slots.length - k0);
      const pick = g.i32('pick', 2 * P), h = g.f('h', P * H), logits = g.f('logits', P * V), out = g.f('out', P);
      const idx = new Int32Array(2 * n);
      for (let i = 0; i < n; i++) {
        idx[i] = slots[k0 + i];
        idx[n + i] = i * V + targets[k0 + i]; // the target's entry in the flattened [n, V] log-probabilities
      }
      s.write(tensor(pick.buffer, 0, [2 * n]), idx);
      s.embeddingForward(tensor(yAll.buffer, 0, [(T + 1) * B, H]), tensor(pick.buffer, 0, [n]), tensor(h.buffer, 0, [n, H]));
      const lg = tensor(logits.buffer, 0, [n, V]);
      net.decoder.logProbs(tensor(h.buffer, 0, [n, H]), lg, INVARIANT);
      s.embeddingForward(tensor(logits.buffer, 0, [n * V, 1]), tensor(pick.buffer, n, [n]), tensor(out.buffer, 0, [n, 1]));
      const mine = rows.slice(k0, k0 + n);
      track(s.read(tensor(out.buffer, 0, [n])), (vals) => {
        mine.forEach((a, i) => a.scores.push(vals[i]));
      });
    }
  }

  /** Drops rows that are over, moves finished prompts to decoding, admits queued jobs. */
  private regroup(): void {
    const job = (a: Active) => a.job;
    // Decoding rows: those finishing save their state (their last token is fed now) and leave.
    const decKeep: number[] = [];
    const decNext: Active[] = [];
    this.dec.forEach((a, b) => {
      if (a.finishing && !a.ended) {
        if (job(a).save) this.commit(a, this.decRows.row(b));
        this.ending.push(a);
      }
      if (a.finishing) return;
      if (a.ended) return;
      decKeep.push(b);
      decNext.push(a);
    });
    const decSources: (StateRef | null)[] = [];
    const preKeep: number[] = [];
    const preNext: Active[] = [];
    this.pre.forEach((a, b) => {
      if (a.ended) return;
      if (a.fed < job(a).feed.length) {
        preKeep.push(b);
        preNext.push(a);
        return;
      }
      if (job(a).then === 'none') {
        if (job(a).save) this.commit(a, this.preRows.row(b));
        this.ending.push(a); // its last scores are read in this iteration
        return;
      }
      decSources.push(this.preRows.row(b));
      decNext.push(a);
    });
    const preSources: (StateRef | null)[] = [];
    while (this.queue.length > 0 && decNext.length + preNext.length < this.options.maxRows) {
      const a = this.queue.shift()!;
      if (job(a).feed.length > 0) {
        preSources.push(job(a).init);
        preNext.push(a);
      } else if (job(a).then === 'none') {
        this.end(a); // nothing to feed or draw
      } else {
        decSources.push(job(a).init);
        decNext.push(a);
      }
    }
    // The jobs are the groups' before the re-layouts: if one throws (memory), the loop ends them all.
    this.dec = decNext;
    this.pre = preNext;
    // Decoding first: it copies from the feeding rows' current state, which the next re-layout replaces.
    this.decRows.relayout(decKeep, decSources, this.bucket(decNext.length));
    this.preRows.relayout(preKeep, preSources);
  }

  /** The decoding rows kept on the device for B requests: with graphs, B's bucket (rows.ts). */
  private bucket(B: number): number {
    return this.graphs ? bucketOf(B, this.options.maxRows) : B;
  }

  /** Every decoding row feeds its token from the ids scratch at `at` (one step, T = 1). */
  private step(at: number): void {
    const net = this.net, s = net.stream, g = this.decRows;
    const { embeddingSize: E, hiddenSize: H } = net.config;
    const B = g.B; // the requests' rows and a bucket's idle ones
    const x = g.f('x', B * E), y = g.f('y', B * H);
    const sp = net.rnn.spaces(1, B);
    const ids = g.i32('ids', at + B);
    net.embed(tensor(ids.buffer, at, [B]), tensor(x.buffer, 0, [B, E]));
    s.rnnForward(net.rnn, {
      x: tensor(x.buffer, 0, [1, B, E]), y: tensor(y.buffer, 0, [1, B, H]),
      hx: g.current(0), cx: this.shape.cell ? g.current(1) : null, hy: g.next(0), cy: this.shape.cell ? g.next(1) : null,
      ...net.rnnArgs, reserve: g.f('reserve', sp.reserve), workspace: g.f('workspace', sp.workspace), training: false,
      batchInvariant: true,
    });
    g.swap();
  }

  /**
   * Each decoding row's next-token distribution and draw. When every row draws on the device and
   * no request waits to join, several steps are queued at once (each feeding the ids the one before
   * drew): one round trip to the host per MAX_STEPS tokens instead of per token. A row that ends
   * early discards what was drawn after its end (its state is not kept). Returns the steps queued,
   * and whether every token to feed next is on the device.
   */
  private decode(track: <T>(p: Promise<T>, use: (v: T) => void) => void): { steps: number; deviceFed: boolean } {
    const net = this.net, s = net.stream, g = this.decRows;
    const V = net.config.vocabSize;
    const B = g.B; // the requests' rows (this.dec), then a bucket's idle ones
    const logits = tensor(g.f('logits', B * V).buffer, 0, [B, V]);
    const distribution = () => {
      net.decoder.logProbs(g.top(), logits, INVARIANT);
    };
    const first = this.dec.map((a) => (a.ended || a.job.then === 'dist' ? undefined : a.job.draw!(a.drawn)));
    const allDevice = first.every((d, b) => d?.device === true && !this.dec[b].job.save);
    // Nothing could join before these steps end: no request waits, or the rows are full.
    const closed = this.queue.length === 0 || this.dec.length >= this.options.maxRows;
    const fit = allDevice && closed && this.pre.length === 0
      ? Math.max(1, Math.min(MAX_STEPS, Math.floor(STEPS_MS / this.stepMs), ...this.dec.map((a) => (a.job.limit ?? 1) - a.drawn)))
      : 1;
    // With graphs, a power of two: the step count is in a chunk's key, and the measured step time
    // it follows would otherwise make a new key (a new capture) of nearly every chunk.
    const n = this.graphs ? 2 ** Math.floor(Math.log2(fit)) : fit;
    // Sized for MAX_STEPS whatever n is: n follows the measured step time, and a slot that grew
    // whenever the steps got faster would grow long after the load settled.
    const ids = g.i32('ids', MAX_STEPS * B), values = g.f('values', MAX_STEPS * B);
    // Rows of the logits as they are now (a read is queued in order, before a later step overwrites
    // them): one read of all the logits when several rows are needed, else the one row.
    const readRows = (bs: number[]): Promise<(b: number) => Float32Array> => bs.length === 1
      ? s.read(tensor(logits.buffer, bs[0] * V, [V])).then((r) => () => r as Float32Array)
      : s.read(tensor(logits.buffer, 0, [B * V])).then((all) => (b) => (all as Float32Array).subarray(b * V, (b + 1) * V));
    this.idsAt = (n - 1) * B;
    // Each row's draws of the n steps, in its order (a draw takes the request's next seed), and a bucket's idle rows'.
    const draws: (Draw | undefined)[][] = [first];
    for (let j = 1; j < n; j++) draws.push(this.dec.map((a) => a.job.draw!(a.drawn + j)));
    for (const ds of draws) padIdle(ds, B);
    /** Per step, the rows of device draws `withRow`. */
    const seen: (Promise<(b: number) => Float32Array> | undefined)[] = [];
    // Every device draw's seed, written once for the n steps (a graph's replay reads them too).
    const seeds = g.i32('seeds', 2 * MAX_STEPS * B);
    if (draws.some((ds) => ds.some((d) => d?.device))) s.write(tensor(seeds.buffer, 0, [2 * n * B]), packSeeds(draws));
    /** The n steps' ops: per step, one sample op per run of rows that draw alike. */
    const steps = () => {
      distribution();
      for (let j = 0; j < n; j++) {
        if (j > 0) {
          this.step((j - 1) * B);
          distribution();
        }
        for (const { start, end, draw: d } of sampleRuns(draws[j])) {
          const at = j * B + start, k = end - start;
          s.sample(tensor(logits.buffer, start * V, [k, V]), tensor(ids.buffer, at, [k]), d.temperature, d.topK, d.topP, d.seed, d.exclude, tensor(values.buffer, at, [k]), tensor(seeds.buffer, 2 * at, [2 * k]));
        }
        const want = draws[j].flatMap((d, b) => (d?.device && d.withRow ? [b] : []));
        seen.push(want.length > 0 ? readRows(want) : undefined);
      }
    };
    const key = this.graphs && chunkKey(draws, B, g.parity);
    if (this.graphs && key) {
      // A replay skips the steps' one effect on the host, the state sets' swaps: make them.
      if (this.graphs.run(key, steps) === 'replayed') for (let j = 1; j < n; j++) g.swap();
    } else {
      steps();
    }
    // Rows read by the host (a distribution, a draw on the host).
    const hostRows = this.dec.map((a, b) => (a.ended || first[b]?.device ? -1 : b)).filter((b) => b >= 0);
    const onRow = (a: Active, d: Draw | undefined, b: number, lp: Float32Array) => {
      if (!d) {
        if (a.ended) return;
        a.job.onDist!(lp);
        return this.end(a);
      }
      if (d.device) return;
      const id = d.pick(lp);
      s.write(tensor(ids.buffer, b, [1]), Int32Array.of(id));
      this.token(a, id, lp[id], lp);
    };
    if (hostRows.length > 0) {
      const rows = [...this.dec];
      track(readRows(hostRows), (rowOf) => {
        for (const b of hostRows) onRow(rows[b], first[b], b, rowOf(b));
      });
    }
    if (first.some((d) => d?.device)) {
      const rows = [...this.dec];
      const got = Promise.all([s.read(tensor(ids.buffer, 0, [n * B])), s.read(tensor(values.buffer, 0, [n * B])), Promise.all(seen)]);
      track(got, ([idv, lpv, rowsOf]) => {
        for (let j = 0; j < n; j++) rows.forEach((a, b) => {
          const d = draws[j][b];
          if (d?.device) this.token(a, idv[j * B + b], lpv[j * B + b], d.withRow ? rowsOf[j]!(b) : undefined);
        });
      });
    }
    // Every row drew on the device or drew nothing: no host draw writes an id to feed later.
    return { steps: n, deviceFed: first.every((d) => d === undefined || d.device) };
  }

  private token(a: Active, id: number, logProb: number, logProbs?: Float32Array): void {
    if (a.ended || a.finishing) return;
    a.drawn++;
    let done: boolean;
    try {
      done = a.job.onToken!(id, logProb, logProbs);
    } catch (e) {
      return this.end(a, { error: e });
    }
    if (!done) return;
    if (a.job.save) a.finishing = true; // leaves after its last token is fed
    else this.end(a);
  }

  /** Writes a job's final state to its session; from then on the job answers (an abort is too late). */
  private commit(a: Active, from: StateRef): void {
    copyState(this.net.stream, this.shape, from, a.job.save!);
    a.committed = true;
  }

  /** Rejects every job with ERR_DISPOSED; the model's stream frees the memory. */
  dispose(): void {
    this.disposed = true;
    const err = new RnnlmError('ERR_DISPOSED', 'this model was disposed while the call was running');
    for (const a of [...this.queue, ...this.dec, ...this.pre, ...this.ending.splice(0)]) this.end(a, { error: err });
    this.queue.length = 0;
    this.dec = [];
    this.pre = [];
    this.graphs?.clear();
    this.decRows.dispose();
    this.preRows.dispose();
  }
}
