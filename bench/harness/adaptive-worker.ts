/**
 * One configuration (V, softmax) of the adaptive-softmax benchmark in its own process, so its
 * peaks are its own: generation first (its peak apart), then training, warm-up excluded, as
 * bench/harness/worker.ts runs a peer. The run goes to the parent over IPC after each phase, so a
 * run stopped at its time budget still reports what it measured.
 */
import { performance } from 'node:perf_hooks';
import { cpuBackend } from '../../lib/advanced';
import { LanguageModel } from '../../lib/model';
import { ADAPTIVE_MODEL, DIV_VALUE, HEAD_BIAS, PROMPT_TOKENS, zipfCdf, zipfTokens, type AdaptiveRun, type AdaptiveSpec, type Peaks } from './adaptive';
import { memoryOf } from './serve-server';

const M = ADAPTIVE_MODEL;

function peaks(): Peaks {
  return { backendMiB: cpuBackend.memoryStats().peakBytes / 2 ** 20, rssMiB: memoryOf(process.pid)!.hwm };
}

async function run(spec: AdaptiveSpec, send: (r: AdaptiveRun) => void): Promise<void> {
  const r: AdaptiveRun = { vocabSize: spec.vocabSize, softmax: spec.softmax, status: 'ok' };
  if (spec.softmax === 'adaptive') r.cutoffs = spec.cutoffs;
  const model = await LanguageModel.create({
    vocabSize: spec.vocabSize, cell: M.cell, layers: M.layers, hiddenSize: M.hiddenSize, embeddingSize: M.embeddingSize,
    softmax: spec.softmax === 'full' ? { type: 'full' } : { type: 'adaptive', cutoffs: spec.cutoffs, divValue: DIV_VALUE, headBias: HEAD_BIAS },
    device: 'cpu', seed: spec.seed,
  });
  r.parameters = model.parameterCount;
  const { blas } = cpuBackend.info() as { blas?: { library: string; threads: number } };
  if (blas) r.info = { blas: blas.library, threads: blas.threads };
  const cdf = zipfCdf(spec.vocabSize);
  let call = 0;

  // Generation at batch 1, temperature 1 (sampling from the whole distribution), through every id.
  const prompt = zipfTokens(PROMPT_TOKENS, cdf, spec.seed);
  const generate = async (maxTokens: number) => {
    const g = await model.generate({ prompt, maxTokens, temperature: 1, seed: spec.seed + ++call, stopAtEos: false, details: true });
    return g.ids.length;
  };
  await generate(Math.min(20, spec.generateTokens));
  const gen = { calls: 0, tokens: 0, seconds: 0, tokensPerSecond: 0 };
  const g0 = performance.now();
  while (gen.calls === 0 || performance.now() - g0 < spec.genSeconds * 1000) {
    gen.tokens += await generate(spec.generateTokens);
    gen.calls++;
  }
  gen.seconds = (performance.now() - g0) / 1000;
  gen.tokensPerSecond = gen.tokens / gen.seconds;
  r.generate = gen;
  r.memory = { afterGenerate: peaks() };
  send(r);

  // Training through fit on token ids, as bench/harness/rnnlm-peer.ts trains: `steps` windows of
  // batchSize x seqLength (Adam, clipNorm 5, state carried), the call timed by the wall clock as
  // bench/harness/worker.ts times the peer's train(steps) (fit's own tokens/s, which leaves out the
  // call's set-up, is kept beside it). A fresh stretch of the Zipf stream per call.
  const fit = async (steps: number) => {
    const data = zipfTokens(M.batchSize * (steps * M.seqLength + 1), cdf, spec.seed + ++call);
    const t0 = performance.now();
    const logs = await model.fit(data, {
      mode: 'stream', epochs: 1, batchSize: M.batchSize, seqLength: M.seqLength, progress: false,
      optimizer: { ...M.optimizer }, clipNorm: M.clipNorm, seed: spec.seed,
    });
    return { seconds: (performance.now() - t0) / 1000, log: logs[logs.length - 1] };
  };
  // Warm-up: one step (first allocations), and two more when a step is cheap, to size the timed call.
  const first = await fit(1);
  let warmupSteps = 1, warmupSeconds = first.seconds, stepSeconds = first.seconds;
  if (stepSeconds < spec.minSeconds / 4) {
    const w = await fit(2);
    warmupSteps += 2;
    warmupSeconds += w.seconds;
    stepSeconds = w.seconds / 2;
  }
  const steps = Math.min(spec.maxSteps, Math.max(spec.minSteps, Math.ceil(spec.minSeconds / stepSeconds)));
  const timed = await fit(steps);
  r.train = {
    warmupSteps, warmupSeconds, firstLoss: first.log.loss,
    steps, seconds: timed.seconds, tokensPerSecond: (steps * M.batchSize * M.seqLength) / timed.seconds,
    tokens: timed.log.tokens, fitTokensPerSecond: timed.log.tokensPerSecond, loss: timed.log.loss,
  };
  r.memory.end = peaks();
  model.dispose();
  send(r);
}

if (require.main === module) {
  const send = (m: AdaptiveRun) => process.send!(m);
  const spec = JSON.parse(process.argv[2]) as AdaptiveSpec;
  run(spec, send).then(
    () => process.disconnect(),
    (e: Error) => {
      send({ vocabSize: spec.vocabSize, softmax: spec.softmax, status: 'error', reason: e.stack ?? String(e) });
      process.disconnect();
    },
  );
}
