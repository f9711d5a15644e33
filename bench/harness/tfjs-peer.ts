/**
 * TensorFlow.js as a benchmark peer: the same model, batch, optimizer and clipping as ours,
 * written the fastest way tfjs allows rather than the slowest — ops and autodiff (not
 * tf.layers), the input projection of all time steps in one matMul (as cuDNN and our backend
 * do), only the recurrent product per step, Adam from tf.train, the loss read once per step.
 *
 * tfjs is optional: a missing package is reported as the peer being unavailable.
 */
import type * as TF from '@tensorflow/tfjs';
import { dirname, join } from 'node:path';
import { GATES } from '../../lib/nn/layout';
import { nodeRequire } from '../../lib/util/package-root';
import type { BenchConfig } from './configs';
import { PeerUnavailable, syntheticTokens, type Peer } from './peer';

type Tensor = TF.Tensor;
type Tensor2D = TF.Tensor2D;

const PACKAGES = { cpu: '@tensorflow/tfjs', wasm: '@tensorflow/tfjs-backend-wasm', webgpu: '@tensorflow/tfjs-backend-webgpu' } as const;

function load<T>(name: string): T {
  try {
    return nodeRequire(name) as T;
  } catch (e) {
    throw new PeerUnavailable(`${name} is not installed (${(e as Error).message.split('\n')[0]}); npm install ${name}`);
  }
}

/**
 * WebGPU in Node: Dawn through the `webgpu` package (Vulkan on Linux). Its index.js is an ES
 * module, so its dawn.node is loaded directly; tfjs finds the adapter at navigator.gpu.
 */
async function installWebGpu() {
  let dawn: { create(flags: string[]): unknown; globals: Record<string, unknown> };
  try {
    const dir = dirname(nodeRequire.resolve('webgpu'));
    dawn = nodeRequire(join(dir, 'dist', `${process.platform}-${process.arch}`, 'dawn.node')) as typeof dawn;
  } catch (e) {
    throw new PeerUnavailable(`the webgpu package (Dawn) is not usable here: ${(e as Error).message.split('\n')[0]}; npm install webgpu`);
  }
  Object.assign(globalThis, dawn.globals);
  const nav = ((globalThis as { navigator?: object }).navigator ??= {}) as { gpu?: unknown };
  const gpu = dawn.create([]) as { requestAdapter(): Promise<{ info?: { description?: string } } | null> };
  Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  const adapter = await gpu.requestAdapter();
  if (!adapter) throw new PeerUnavailable('Dawn found no WebGPU adapter (it needs libvulkan.so.1 and a Vulkan driver)');
  return adapter.info?.description ?? 'WebGPU adapter';
}

export function tfjsPeer(backendName: 'cpu' | 'wasm' | 'webgpu') {
  return async (c: BenchConfig, seed: number): Promise<Peer> => {
    const tf = load<typeof TF>(PACKAGES.cpu);
    const adapter = backendName === 'webgpu' ? await installWebGpu() : undefined;
    if (backendName !== 'cpu') load(PACKAGES[backendName]);
    const ok = await tf.setBackend(backendName).catch((e: Error) => {
      throw new PeerUnavailable(`tfjs backend '${backendName}' failed to start: ${e.message}`);
    });
    if (!ok) throw new PeerUnavailable(`tfjs backend '${backendName}' failed to start`);
    await tf.ready();
    const info: Record<string, string | number | boolean> = { version: tf.version.tfjs, backend: tf.getBackend() };
    if (adapter) info.adapter = adapter;
    if (backendName === 'wasm') {
      info.simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
      info.threads = tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT');
    }
    const notes: string[] = [];
    // The gather's gradient needs UnsortedSegmentSum, which some backends (wasm) lack: then
    // the embedding is a one-hot matrix times the table, the same math at a higher cost.
    let oneHotInput = false;
    try {
      tf.tidy(() => tf.grad((t: Tensor) => tf.sum(tf.gather(t, tf.tensor1d([0], 'int32'))))(tf.ones([2, 2])).dataSync());
    } catch (e) {
      oneHotInput = true;
      notes.push(`embedding as one-hot x table: the ${backendName} backend cannot differentiate gather (${(e as Error).message.split('\n')[0]})`);
    }
    // tfjs-backend-wasm 4.22's OneHot ignores dtype 'float32' and writes int32 bits (a 1 reads as
    // 1.4e-45): then the one-hot is made as int32 and cast.
    const castOneHot = tf.tidy(() => tf.oneHot(tf.tensor1d([0], 'int32'), 2, 1, 0, 'float32').dataSync()[0]) !== 1;
    if (castOneHot) notes.push(`one-hot made as int32 and cast: the ${backendName} backend's oneHot ignores dtype 'float32'`);
    return new TfjsModel(tf, c, seed, oneHotInput, castOneHot, info, notes);
  };
}

interface Layer {
  Wih: TF.Variable;
  Whh: TF.Variable;
  bih: TF.Variable;
  bhh: TF.Variable;
}

class TfjsModel implements Peer {
  private readonly vars: TF.Variable[] = [];
  private readonly enc: TF.Variable;
  private readonly layers: Layer[] = [];
  private readonly dec: TF.Variable;
  private readonly decb: TF.Variable;
  private readonly optimizer: TF.Optimizer;
  private readonly G: number;
  private h: Tensor2D[] = [];
  private c: Tensor2D[] = [];
  private call = 0;

  constructor(
    private readonly tf: typeof TF,
    private readonly cfg: BenchConfig,
    private readonly seed: number,
    private readonly oneHotInput: boolean,
    private readonly castOneHot: boolean,
    readonly info: Record<string, string | number | boolean>,
    readonly notes: string[],
  ) {
    const { vocabSize: V, embeddingSize: E, hiddenSize: H, layers: L, cell } = cfg;
    this.G = GATES[cell];
    let s = seed;
    const v = (shape: number[], r: number) => {
      const t = tf.variable(r === 0 ? tf.zeros(shape) : tf.randomUniform(shape, -r, r, 'float32', s++));
      this.vars.push(t);
      return t;
    };
    const k = 1 / Math.sqrt(H);
    this.enc = v([V, E], 0.1);
    for (let l = 0; l < L; l++) {
      this.layers.push({ Wih: v([l === 0 ? E : H, this.G * H], k), Whh: v([H, this.G * H], k), bih: v([this.G * H], k), bhh: v([this.G * H], k) });
    }
    this.dec = v([H, V], 0.1);
    this.decb = v([V], 0);
    this.optimizer = tf.train.adam(1e-3);
    this.resetState(cfg.batchSize);
  }

  private resetState(B: number) {
    for (const t of new Set([...this.h, ...this.c])) t.dispose();
    this.h = this.layers.map(() => this.tf.zeros([B, this.cfg.hiddenSize]));
    this.c = this.layers.map(() => this.tf.zeros([B, this.cfg.hiddenSize]));
  }

  /** One time step of layer l: xp = x W_ih + b_ih (precomputed), PyTorch's gate equations. */
  private cell(l: number, xp: Tensor2D, h: Tensor2D, c: Tensor2D): [Tensor2D, Tensor2D] {
    const tf = this.tf;
    const { Whh, bhh } = this.layers[l];
    const gh = tf.add(tf.matMul(h, Whh), bhh) as Tensor2D;
    switch (this.cfg.cell) {
      case 'lstm': {
        const [i, f, g, o] = tf.split(tf.add(xp, gh), 4, 1);
        const cNew = tf.add(tf.mul(tf.sigmoid(f), c), tf.mul(tf.sigmoid(i), tf.tanh(g))) as Tensor2D;
        return [tf.mul(tf.sigmoid(o), tf.tanh(cNew)) as Tensor2D, cNew];
      }
      case 'gru': {
        const [xr, xz, xn] = tf.split(xp, 3, 1);
        const [hr, hz, hn] = tf.split(gh, 3, 1);
        const r = tf.sigmoid(tf.add(xr, hr));
        const z = tf.sigmoid(tf.add(xz, hz));
        const n = tf.tanh(tf.add(xn, tf.mul(r, hn)));
        return [tf.add(n, tf.mul(z, tf.sub(h, n))) as Tensor2D, c];
      }
      default: {
        const pre = tf.add(xp, gh);
        return [(this.cfg.cell === 'rnn_tanh' ? tf.tanh(pre) : tf.relu(pre)) as Tensor2D, c];
      }
    }
  }

  private oneHot(ids: Int32Array): Tensor2D {
    const tf = this.tf, V = this.cfg.vocabSize, idT = tf.tensor1d(ids, 'int32');
    return (this.castOneHot ? tf.cast(tf.oneHot(idT, V), 'float32') : tf.oneHot(idT, V, 1, 0, 'float32')) as Tensor2D;
  }

  /** Mean cross-entropy of a T x B window (time-major ids); leaves the final states in h, c (kept). */
  private loss(ids: Int32Array, targets: Int32Array): TF.Scalar {
    const tf = this.tf;
    const T = this.cfg.seqLength;
    let x = (this.oneHotInput ? tf.matMul(this.oneHot(ids), this.enc) : tf.gather(this.enc, tf.tensor1d(ids, 'int32'))) as Tensor2D;
    const hy: Tensor2D[] = [], cy: Tensor2D[] = [];
    this.layers.forEach((layer, l) => {
      const xps = tf.split(tf.add(tf.matMul(x, layer.Wih), layer.bih) as Tensor2D, T, 0) as Tensor2D[];
      let h = this.h[l], c = this.c[l];
      const outs: Tensor2D[] = [];
      for (let t = 0; t < T; t++) {
        [h, c] = this.cell(l, xps[t], h, c);
        outs.push(h);
      }
      hy.push(tf.keep(h));
      cy.push(tf.keep(c));
      x = tf.concat(outs, 0);
    });
    this.pending = { hy, cy };
    const logits = tf.add(tf.matMul(x, this.dec), this.decb);
    return tf.losses.softmaxCrossEntropy(this.oneHot(targets), logits) as TF.Scalar;
  }
  private pending?: { hy: Tensor2D[]; cy: Tensor2D[] };

  /** Truncated BPTT: the next window starts from these states, without their gradient. */
  private carry() {
    if (!this.pending) return;
    const next = new Set<Tensor>([...this.pending.hy, ...this.pending.cy]);
    for (const t of new Set([...this.h, ...this.c])) if (!next.has(t)) t.dispose(); // GRU/RNN pass c through
    this.h = this.pending.hy;
    this.c = this.pending.cy;
    this.pending = undefined;
  }

  async train(steps: number) {
    const tf = this.tf;
    const { batchSize: B, seqLength: T, vocabSize: V } = this.cfg;
    if (this.h[0].shape[0] !== B) this.resetState(B);
    const cols = steps * T + 1;
    const stream = syntheticTokens(B * cols, V, this.seed + ++this.call);
    const ids = new Int32Array(T * B), targets = new Int32Array(T * B);
    let loss = NaN;
    for (let s = 0; s < steps; s++) {
      for (let t = 0; t < T; t++) {
        for (let b = 0; b < B; b++) {
          ids[t * B + b] = stream[b * cols + s * T + t];
          targets[t * B + b] = stream[b * cols + s * T + t + 1];
        }
      }
      const held = tf.memory().numBytes;
      const value = this.explainAbort(held, () => tf.tidy(() => {
        const { value, grads } = tf.variableGrads(() => this.loss(ids, targets));
        // Global-norm clipping (5), as clip_grad_norm_ and our clipNorm.
        const norm = tf.sqrt(tf.addN(Object.values(grads).map((g) => tf.sum(tf.square(g)))));
        const scale = tf.minimum(1, tf.div(5, tf.add(norm, 1e-6)));
        const clipped: TF.NamedTensorMap = {};
        for (const [name, g] of Object.entries(grads)) clipped[name] = tf.mul(g, scale);
        this.optimizer.applyGradients(clipped);
        return value;
      }));
      loss = (await value.data())[0];
      value.dispose();
      this.carry();
    }
    return { loss };
  }

  /** The wasm backend dies with a bare "Aborted()" when its heap (at most 4 GiB) runs out: say so. */
  private explainAbort<R>(heldBytes: number, f: () => R): R {
    try {
      return f();
    } catch (e) {
      if (this.tf.getBackend() === 'wasm' && /Aborted\(\)/.test(String((e as Error).message))) {
        const heap = (this.tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8?.length ?? 0;
        const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
        throw new Error(`the wasm backend aborted in a training step with its WebAssembly heap at ${mib(heap)} (the limit is 4 GiB): ` +
          `tfjs held ${mib(this.tf.memory().numBytes)} of tensors (${mib(heldBytes)} before the step), as a step keeps every intermediate of ${this.cfg.seqLength} time steps for the gradient`);
      }
      throw e;
    }
  }

  async generate(tokens: number) {
    const tf = this.tf;
    this.resetState(1);
    let token = 5;
    for (let i = 0; i < tokens; i++) {
      const next = tf.tidy(() => {
        let x = tf.gather(this.enc, tf.tensor1d([token], 'int32')) as Tensor2D;
        const hy: Tensor2D[] = [], cy: Tensor2D[] = [];
        this.layers.forEach((layer, l) => {
          const [h, c] = this.cell(l, tf.add(tf.matMul(x, layer.Wih), layer.bih) as Tensor2D, this.h[l], this.c[l]);
          hy.push(tf.keep(h));
          cy.push(tf.keep(c));
          x = h;
        });
        this.pending = { hy, cy };
        return tf.multinomial(tf.add(tf.matMul(x, this.dec), this.decb) as Tensor2D, 1, this.seed + i);
      });
      token = (await next.data())[0];
      next.dispose();
      this.carry();
    }
    return tokens;
  }

  dispose() {
    for (const t of new Set([...this.h, ...this.c, ...this.vars])) t.dispose();
    this.optimizer.dispose();
  }
}
