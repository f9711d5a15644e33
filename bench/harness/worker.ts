/**
 * One benchmark run in its own process (so peak RSS is the peer's alone and peers never share
 * a runtime): generation first, then training, warm-up excluded. Results go to the parent over
 * IPC after each phase, so a run stopped at its time budget still reports what it measured.
 */
import { performance } from 'node:perf_hooks';
import type { BenchConfig } from './configs';
import { implausibleFirstLoss, PeerUnavailable, type Peer, type PeerFactory } from './peer';
import { rnnlmPeer } from './rnnlm-peer';
import { tfjsPeer } from './tfjs-peer';

export const PEERS: Record<string, PeerFactory> = {
  'rnnlm-cpu': rnnlmPeer('cpu'),
  'rnnlm-cuda': rnnlmPeer('cuda'),
  'rnnlm-cuda-tf32': rnnlmPeer('cuda', { precision: 'tf32' }),
  'rnnlm-cuda-bf16': rnnlmPeer('cuda', { precision: 'bf16' }),
  'rnnlm-cuda-fp16': rnnlmPeer('cuda', { precision: 'fp16' }),
  'rnnlm-cuda-auto': rnnlmPeer('cuda', { algorithm: 'auto' }),
  'rnnlm-cuda-graphs': rnnlmPeer('cuda', { graphs: true }),
  'tfjs-cpu': tfjsPeer('cpu'),
  'tfjs-wasm': tfjsPeer('wasm'),
  'tfjs-webgpu': tfjsPeer('webgpu'),
};

export interface RunSpec {
  peer: string;
  config: BenchConfig;
  seed: number;
  /** Timed training lasts at least this long (and at least 2 steps), unless `steps` is given. */
  minSeconds: number;
  steps?: number;
  maxSteps: number;
  /** Timed generation lasts about this long. */
  genSeconds: number;
}

export interface RunResult {
  peer: string;
  config: string;
  status: 'ok' | 'unavailable' | 'error' | 'timeout';
  reason?: string;
  info?: Record<string, string | number | boolean>;
  notes: string[];
  generate?: { tokens: number; seconds: number; tokensPerSecond: number };
  train?: {
    warmupSeconds?: number;
    steps: number;
    seconds: number;
    tokensPerSecond: number;
    loss?: number;
    /** The loss of the first step of the fresh model (checked by implausibleFirstLoss). */
    firstLoss?: number;
    /** Device allocations per step over steps after the first (ours: 0). */
    allocationsPerStep?: number;
  };
  /** When training started (ms since epoch), for an upper bound if the budget ends a step. */
  trainStartedAt?: number;
  peakRssMiB?: number;
  peakDeviceMiB?: number;
}

async function run(spec: RunSpec, send: (r: RunResult) => void): Promise<void> {
  const c = spec.config;
  const r: RunResult = { peer: spec.peer, config: c.name, status: 'ok', notes: [] };
  const report = (peer?: Peer) => {
    r.peakRssMiB = process.resourceUsage().maxRSS / 1024;
    const dev = peer?.peakDeviceBytes?.();
    if (dev !== undefined) r.peakDeviceMiB = dev / 2 ** 20;
    send(r);
  };
  const factory = PEERS[spec.peer];
  let peer: Peer;
  try {
    if (!factory) throw new PeerUnavailable(`unknown peer '${spec.peer}' (known: ${Object.keys(PEERS).join(', ')})`);
    peer = await factory(c, spec.seed);
  } catch (e) {
    r.status = e instanceof PeerUnavailable ? 'unavailable' : 'error';
    r.reason = (e as Error).message;
    return report();
  }
  r.info = peer.info;
  r.notes = peer.notes;

  // Generation: token by token at batch 1, after a short warm-up.
  await peer.generate(5);
  let made = 0, chunk = 10;
  const g0 = performance.now();
  while (made < 20 || (performance.now() - g0 < spec.genSeconds * 1000 && made < 100_000)) {
    made += await peer.generate(chunk);
    chunk = Math.min(chunk * 2, 500);
  }
  const gs = (performance.now() - g0) / 1000;
  r.generate = { tokens: made, seconds: gs, tokensPerSecond: made / gs };
  r.trainStartedAt = Date.now();
  report(peer);

  // Training: one warm-up step (two when cheap), then the timed steps.
  const tokensPerStep = c.batchSize * c.seqLength;
  let w0 = performance.now();
  const firstLoss = (await peer.train(1)).loss;
  let stepSeconds = (performance.now() - w0) / 1000;
  const wrong = implausibleFirstLoss(firstLoss, c.vocabSize);
  if (wrong) {
    r.status = 'error';
    r.reason = wrong;
    peer.dispose();
    return report(peer);
  }
  r.train = { warmupSeconds: stepSeconds, steps: 0, seconds: 0, tokensPerSecond: 0, firstLoss };
  if (stepSeconds < spec.minSeconds / 4) {
    w0 = performance.now();
    await peer.train(2);
    stepSeconds = (performance.now() - w0) / 2000;
  }
  const steps = spec.steps ?? Math.min(spec.maxSteps, Math.max(2, Math.ceil(spec.minSeconds / stepSeconds)));
  if (steps * stepSeconds > 30) {
    // A slow peer: one step per call, reported as it goes, so the budget still leaves a figure.
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const { loss } = await peer.train(1);
      const t = r.train;
      t.steps++;
      t.seconds += (performance.now() - t0) / 1000;
      t.tokensPerSecond = (t.steps * tokensPerStep) / t.seconds;
      t.loss = loss;
      report(peer);
    }
  } else {
    const t0 = performance.now();
    const { loss, steady } = await peer.train(steps);
    const seconds = (performance.now() - t0) / 1000;
    r.train = { ...r.train, steps, seconds, tokensPerSecond: (steps * tokensPerStep) / seconds, loss };
    if (steady) r.train.allocationsPerStep = steady.allocations / steady.steps;
  }
  peer.dispose();
  report(peer);
}

if (require.main === module) {
  const send = (m: RunResult) => process.send!(m);
  run(JSON.parse(process.argv[2]) as RunSpec, send).then(
    () => process.disconnect(),
    (e: Error) => {
      send({ peer: '?', config: '?', status: 'error', reason: e.stack ?? String(e), notes: [] });
      process.disconnect();
    },
  );
}
