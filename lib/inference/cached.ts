/**
 * Requests with a continuous cache (lib/cache.ts): the scheduler's jobs (the same feeds, scores,
 * distributions, draws and saved states), run at batch 1 on the network's own state, one at a
 * time: a mixture needs every fed position's output and the memory of its one sequence, which the
 * batching scheduler does not keep. Every distribution such a request reads, scores or draws from
 * is the mixture, drawn from as the scheduler would (the device's sampler, or the host's).
 */
import { tensor } from '../backend/types';
import { CacheMemory, cacheFeed, cacheRow, mixRow, mixedLogProb, parseCache, type CachedRow } from '../cache';
import { invalidArgument } from '../errors';
import type { Network } from '../nn/network';
import type { Options } from '../options';
import type { Access } from '../runtime/access';
import { copyState, type StateRef } from '../runtime/rows';
import type { Draw, Job } from '../runtime/scheduler';
import { nothingToDraw } from './sampling';

/** Tokens fed per window (the outputs' products with each other are [T, T]). */
const WINDOW = 64;

/** The cache memory a request uses: its session's, or its own (freed when it ends). */
export interface RequestCache {
  memory: CacheMemory;
  own: boolean;
}

/**
 * The cache of a call: its session's, or the call's own `cache` option (checked now; its memory is
 * made when the request is handed over, after every other check). A session's calls take no
 * `cache` option: the session's memory is set when it is made.
 */
export function requestCache(net: Network, o: Options, where: string, session?: CacheMemory): (() => RequestCache) | undefined {
  if (session) {
    if (o.has('cache')) throw invalidArgument(`${where}: a session's cache is set when the session is made (model.session({ cache })); leave cache out`);
    return () => ({ memory: session, own: false });
  }
  if (!o.has('cache')) return undefined;
  const settings = parseCache(where, o.raw('cache'));
  return () => ({ memory: new CacheMemory(net.stream, net.config.dtype, net.config.hiddenSize, settings), own: true });
}

/**
 * Runs a job with its cache after the calls that use the network's memory before it (an abort
 * meanwhile rejects it at once); its resolve or reject is called exactly once. A memory of its own
 * is made when its turn comes, so that many queued requests (a score of many inputs) hold one at a time.
 */
export function runCached(net: Network, access: Access, job: Job, cache: () => RequestCache): void {
  void access
    .network(async () => {
      const c = cache();
      try {
        return await run(net, job, c.memory);
      } finally {
        if (c.own) c.memory.free();
      }
    }, job.signal)
    .then(
      (scores) => job.resolve(scores),
      (e) => job.reject(e),
    );
}

async function run(net: Network, job: Job, mem: CacheMemory): Promise<number[]> {
  const s = net.stream, { layers, hiddenSize: H, cell, dtype } = net.config;
  const { theta, lambda } = mem.settings;
  const signal = job.signal;
  signal?.throwIfAborted();
  const shape = { layers, hiddenSize: H, cell: cell === 'lstm', dtype };
  net.resetState(1);
  const st = net.state(1);
  const own: StateRef = (kind, l) => {
    const t = kind === 0 ? st.hx : st.cx;
    return tensor(t.buffer, t.offset + l * H, [H]);
  };
  if (job.init) copyState(s, shape, job.init, own);
  mem.begin();
  try {
    const scores: number[] = [];
    const { feed, targets } = job;
    // The distribution after the state itself: for a token scored before the feed, and the next
    // token's when nothing is fed.
    let next: CachedRow | null = null;
    if (job.pre >= 0) {
      next = await cacheRow(net, mem);
      scores.push(mixedLogProb(next.row[job.pre], next.view, job.pre, theta, lambda));
    }
    if (feed.length > 0) {
      const last = targets?.[feed.length - 1] ?? -1;
      next = await cacheFeed(net, mem, feed, last, targets, WINDOW, (lp, view, target) => scores.push(mixedLogProb(lp, view, target, theta, lambda)), job.then !== 'none', signal);
    }
    if (job.then === 'dist') {
      next ??= await cacheRow(net, mem);
      job.onDist!(mixRow(next.row, next.view, theta, lambda));
    } else if (job.then === 'sample') {
      next ??= await cacheRow(net, mem);
      for (let i = 0; ; i++) {
        signal?.throwIfAborted();
        const d = job.draw!(i);
        const row = mixRow(next!.row, next!.view, theta, lambda);
        const id = d.device ? await drawOnDevice(net, mem, row, d) : d.pick(row);
        const done = job.onToken!(id, row[id], row) || i + 1 >= (job.limit ?? Infinity);
        // The last token is fed only when the state after it is kept.
        if (done && !job.save) break;
        next = await cacheFeed(net, mem, Int32Array.of(id), -1, null, 1, () => {}, !done, signal);
        if (done) break;
      }
    }
    // From here the job answers (an abort is too late): the session's state and memory move together.
    if (job.save) copyState(s, shape, own, job.save);
    await s.sync();
    if (job.save) mem.commit();
    else mem.rollback();
    return scores;
  } catch (e) {
    try {
      mem.rollback();
    } catch {
      // The stream is gone (the model was disposed): so is the memory.
    }
    throw e;
  }
}

/**
 * The device sampler's draw from a row of the host (the mixture), with the draw's seed: the same
 * tokens as a request without a cache draws from the same row (lambda 0). Ids at probability 0
 * (outside a lambda-1 cache) go to the device as a finite -1e30, which no draw picks.
 */
async function drawOnDevice(net: Network, mem: CacheMemory, row: Float32Array, d: Extract<Draw, { device: true }>): Promise<number> {
  const s = net.stream, V = row.length, banned = new Set(d.exclude);
  let any = false;
  for (let i = 0; i < V && !any; i++) any = row[i] > -Infinity && !banned.has(i);
  if (!any) throw nothingToDraw();
  const logits = mem.scratch.f('draw', V, [1, V]), id = mem.scratch.i32('drawn', 1);
  const finite = (v: number) => (v === -Infinity ? -1e30 : v);
  s.write(logits, net.config.dtype === 'f64' ? Float64Array.from(row, finite) : Float32Array.from(row, finite));
  s.sample(logits, id, d.temperature, d.topK, d.topP, d.seed, d.exclude, null);
  return (await s.read(id))[0];
}
