/**
 * A network's activation memory (as in llm.c): the tensors of a T x B step (embeddings, dropout
 * masks, the RNN's output, reserve and workspace, their gradients, the loss) as views into one
 * float buffer and one id buffer, sized for the largest step shape seen and reused by every step.
 */
import { invalidArgument } from '../errors';
import { tensor, type DeviceBuffer, type RnnDescriptor, type Stream, type Tensor } from '../backend/types';

/** Tensors of one step with T time steps (views into the arena). */
export interface StepViews {
  T: number;
  B: number;
  ids: Tensor;
  emb: Tensor;
  /** The word (embedding) dropout's mask; emb itself when there is none. */
  wordMask: Tensor;
  embMask: Tensor;
  embDrop: Tensor;
  y: Tensor;
  yMask: Tensor;
  yDrop: Tensor;
  dyDrop: Tensor;
  dy: Tensor;
  dEmbDrop: Tensor;
  dEmb: Tensor;
  reserve: Tensor;
  workspace: Tensor;
  loss: Tensor;
  norm: Tensor;
  /** AR + TAR of the last backward (nn/network.ts), [1]. */
  penalty: Tensor;
}

/** Which dropout masks a step needs (nn/network.ts's rates > 0). */
export interface ArenaConfig {
  embeddingSize: number;
  hiddenSize: number;
  dtype: 'f32' | 'f64';
  /** Whole words dropped from the embedding output. */
  dropWords: boolean;
  /** Any dropout on the embedding output (words or elements). */
  dropInput: boolean;
  dropOutput: boolean;
}

/** The buffers: float slots and the token ids. */
interface Memory {
  f: DeviceBuffer;
  i: DeviceBuffer;
  /** Start and capacity of each slot in f, and the capacity of ids in i. */
  at: Record<string, number>;
  cap: Record<string, number>;
  ids: number;
}

/** Activation memory: sized for the largest step shape seen, reused by every step. */
export class Arena {
  private mem?: Memory;

  constructor(
    private readonly stream: Stream,
    private readonly rnn: RnnDescriptor,
    private readonly config: ArenaConfig,
  ) {}

  /** Views for a T x B step; grows the arena when T exceeds its capacity or B changes. */
  views(T: number, B: number): StepViews {
    if (!Number.isInteger(T) || T < 1 || !Number.isInteger(B) || B < 1) {
      throw invalidArgument(`seqLength and batchSize must be positive integers (got ${T} and ${B})`);
    }
    const need = this.slotSizes(T, B);
    let a = this.mem;
    if (!a || T * B > a.ids || Object.entries(need).some(([slot, n]) => n > a!.cap[slot])) {
      // Grow to hold both the old and the new shape, so alternating training and evaluation
      // batch shapes settle after one round and later steps allocate nothing.
      const old = a;
      if (old) for (const slot of Object.keys(need)) need[slot] = Math.max(need[slot], old.cap[slot]);
      this.free();
      a = this.mem = this.alloc(need, Math.max(T * B, old?.ids ?? 0));
    }
    const { embeddingSize: E, hiddenSize: H, dropInput, dropOutput, dropWords } = this.config;
    const N = T * B;
    const f = (slot: string, shape: number[]) => tensor(a.f, a.at[slot], shape);
    const sp = this.rnn.spaces(T, B);
    const emb = f('emb', [T, B, E]);
    const y = f('y', [T, B, H]);
    const dyDrop = f('dyDrop', [T, B, H]);
    const dEmbDrop = f('dEmbDrop', [T, B, E]);
    return {
      T, B,
      ids: tensor(a.i, 0, [N]),
      emb,
      wordMask: dropWords ? f('wordMask', [T, B, E]) : emb,
      embMask: dropInput ? f('embMask', [T, B, E]) : emb,
      embDrop: dropInput ? f('embDrop', [T, B, E]) : emb,
      y,
      yMask: dropOutput ? f('yMask', [T, B, H]) : y,
      yDrop: dropOutput ? f('yDrop', [T, B, H]) : y,
      dyDrop,
      dy: dropOutput ? f('dy', [T, B, H]) : dyDrop,
      dEmbDrop,
      dEmb: dropInput ? f('dEmb', [T, B, E]) : dEmbDrop,
      reserve: f('reserve', [sp.reserve]),
      workspace: f('workspace', [sp.workspace]),
      loss: f('loss', [2]),
      norm: f('norm', [1]),
      penalty: f('penalty', [1]),
    };
  }

  /** Elements each arena slot needs for a T x B step. */
  slotSizes(T: number, B: number): Record<string, number> {
    const { embeddingSize: E, hiddenSize: H, dropInput, dropOutput, dropWords } = this.config;
    const sp = this.rnn.spaces(T, B);
    const N = T * B;
    return {
      emb: N * E,
      wordMask: dropWords ? N * E : 0,
      embMask: dropInput ? N * E : 0,
      embDrop: dropInput ? N * E : 0,
      y: N * H,
      yMask: dropOutput ? N * H : 0,
      yDrop: dropOutput ? N * H : 0,
      dyDrop: N * H,
      dy: dropOutput ? N * H : 0,
      dEmbDrop: N * E,
      dEmb: dropInput ? N * E : 0,
      reserve: sp.reserve,
      workspace: sp.workspace,
      loss: 2,
      norm: 1,
      penalty: 1,
    };
  }

  private alloc(cap: Record<string, number>, ids: number): Memory {
    const at: Record<string, number> = {};
    let total = 0;
    for (const [slot, size] of Object.entries(cap)) {
      at[slot] = total;
      total += size;
    }
    return { at, cap, ids, f: this.stream.alloc(this.config.dtype, total), i: this.stream.alloc('i32', ids) };
  }

  free(): void {
    this.mem?.f.free();
    this.mem?.i.free();
    this.mem = undefined;
  }

}
