/**
 * What a request asks of the scheduler (Job: feed, score, draw, save) and the scheduler's
 * record of it while it runs (Active). lib/inference makes the jobs; runtime/scheduler.ts runs them.
 */
import type { Draw } from './draws';
import type { StateRef } from './rows';

export interface Job {
  /** Tokens fed through the network first (may be empty). */
  feed: Int32Array;
  /** targets[t]: the token scored after feed[t] (-1: none); null: nothing scored. */
  targets: Int32Array | null;
  /** A token scored from the initial state, before feed[0] (-1: none). */
  pre: number;
  /** The state to start from (a session's); null: zeros. */
  init: StateRef | null;
  /** After the feed: nothing, the next-token distribution (onDist), or sampling (draw, onToken). */
  then: 'none' | 'dist' | 'sample';
  /** Where the final state is written (after the feed, or after the last drawn token is fed). */
  save: StateRef | null;
  signal?: AbortSignal;
  onDist?: (logProbs: Float32Array) => void;
  /** How to draw the token of this index (0: the first it draws). */
  draw?: (index: number) => Draw;
  /** 'sample': the most tokens it may draw (it may end before, at <eos> or a stop string). */
  limit?: number;
  /** A drawn token, its log-probability and, for host draws and `withRow`, its row of log-probabilities; true ends the generation. */
  onToken?: (id: number, logProb: number, logProbs?: Float32Array) => boolean;
  /** Log-probabilities of the scored tokens, in order (pre first), when the job ends. */
  resolve: (scores: number[]) => void;
  reject: (e: unknown) => void;
}

export interface Active {
  job: Job;
  fed: number;
  scores: number[];
  /** Tokens drawn so far (sampling). */
  drawn: number;
  /** Over (resolved or rejected); its row leaves at the next re-layout. */
  ended: boolean;
  /** Sampling done; the row leaves after one more step (its last token fed, for save). */
  finishing: boolean;
  /** Its final state is written to its session: an abort no longer cancels it. */
  committed: boolean;
  unwatch?: () => void;
}
