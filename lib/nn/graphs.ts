/**
 * Steps captured as graphs and replayed (issue 26, item 1): small models on a GPU are bound by
 * launches and host round trips, and a training step is dozens of them; a CUDA graph is one.
 * The stream captures a step's compute ops (Stream.captureBegin / captureEnd) and replays them
 * (native/common/binding/graphs.h; on the CPU the kept ops run again: the twin the tests use).
 *
 * A step's shape (its key) runs as usual the first time — a warm-up in which scratch grows, cuBLAS
 * sets up and cuDNN times its algorithms — is captured the second, and replayed after. A replay
 * repeats every argument of every op, so the caller writes what changes per step (the batch's ids
 * and targets: Network.stage; lr and step: Optimizer.prepare) before run(), and the body holds
 * nothing else that changes: no dropout seed, no per-step schedule in an op's arguments.
 * Any allocation on the stream since the last run (an inference call's scratch growing between
 * epochs, a new shape's buffers) may have moved memory a graph points at: every graph is dropped
 * and its shape warms up again.
 */
import type { Stream } from '../backend/types';

/** Whether steps are captured as graphs (fit's and the runtime's): opt-in until a GPU run has verified them. */
export const graphsEnabled = (): boolean => process.env.RNNLM_GRAPHS === '1';

/** Keys kept at most (a graph holds its step's memory and launch plan): the least recently run goes first. */
export const MAX_GRAPHS = 8;

export type StepRun = 'ran' | 'captured' | 'replayed';

export class StepGraphs {
  /** Per key: warmed up (null) or captured (its graph id). */
  private readonly graphs = new Map<string, number | null>();
  /** The stream's allocations after the last run; a change invalidates every graph. */
  private allocations = -1;
  /** How each run went, for tests and reports. */
  readonly counts: Record<StepRun, number> = { ran: 0, captured: 0, replayed: 0 };

  constructor(private readonly stream: Stream) {}

  /** Runs `body` (one step's compute ops, for the shape `key`): as is, captured, or replayed. */
  run(key: string, body: () => void): StepRun {
    if (this.stream.allocations !== this.allocations) this.clear();
    const id = this.graphs.get(key);
    let how: StepRun;
    if (id !== undefined) {
      this.graphs.delete(key); // to the end: the map's order is least recently run first
      this.graphs.set(key, id);
    }
    if (typeof id === 'number') {
      this.stream.replay(id);
      how = 'replayed';
    } else if (id === null) {
      this.stream.captureBegin();
      try {
        body();
      } catch (e) {
        // Part of the step was captured; the stream refuses writes and reads until the capture ends.
        this.stream.releaseGraph(this.stream.captureEnd());
        this.graphs.delete(key);
        throw e;
      }
      this.graphs.set(key, this.stream.captureEnd());
      how = 'captured';
    } else {
      body();
      if (this.graphs.size >= MAX_GRAPHS) this.evictOldest();
      this.graphs.set(key, null);
      how = 'ran';
    }
    this.allocations = this.stream.allocations;
    this.counts[how]++;
    return how;
  }

  private evictOldest(): void {
    const [key, id] = this.graphs.entries().next().value as [string, number | null];
    if (typeof id === 'number') this.stream.releaseGraph(id);
    this.graphs.delete(key);
  }

  /** Drops every graph (they run no more; their memory is freed after the replays queued). */
  clear(): void {
    if (!this.stream.disposed) for (const id of this.graphs.values()) if (typeof id === 'number') this.stream.releaseGraph(id);
    this.graphs.clear();
  }
}
