/**
 * One run of the concurrency scenario (bench/harness/concurrency.ts) in its own process: a model
 * of the configuration's sizes, one warm-up round, then rounds of N calls started together, each
 * call timed. The figures go to the parent after every round, so a run stopped at its budget
 * still reports what it measured.
 */
import { performance } from 'node:perf_hooks';
import { selectBackend } from '../../lib/backend';
import { LanguageModel } from '../../lib/model';
import { CONTEXT_TOKENS, GENERATE_TOKENS, TOP_K, type ConcurrencyRun, type ConcurrencySpec } from './concurrency';
import { syntheticTokens } from './peer';
import { quantile } from './stats';

/** Measured calls stop here even if the rounds have not yet filled the spec's seconds. */
const MAX_CALLS = 100_000;


async function measure(spec: ConcurrencySpec, send: (r: ConcurrencyRun) => void): Promise<void> {
  const { peer, kind, n, batching, config: c } = spec;
  const r: ConcurrencyRun = { peer, config: c.name, kind, n, batching, status: 'ok', rounds: 0, calls: 0, tokens: 0, seconds: 0 };
  const report = () => {
    r.peakRssMiB = process.resourceUsage().maxRSS / 1024;
    send(r);
  };
  const device = peer === 'rnnlm-cuda' ? 'cuda' : 'cpu';
  try {
    r.device = String((selectBackend(device).backend.info() as { device?: string }).device ?? device);
  } catch (e) {
    r.status = 'unavailable';
    r.reason = (e as Error).message.split('\n')[0];
    r.finished = true;
    return report();
  }
  // Random weights (the seed's initialisation): the time of a step does not depend on their values.
  const model = await LanguageModel.create({
    vocabSize: c.vocabSize, cell: c.cell, layers: c.layers, hiddenSize: c.hiddenSize, embeddingSize: c.embeddingSize,
    device, seed: spec.seed, batching,
  });
  const prompt = Array.from(syntheticTokens(4, c.vocabSize, spec.seed));
  /** Each call's own seed (generate) or context (predictNext). */
  let calls = 0;
  const call = async (k: number): Promise<number> => {
    if (kind === 'generate') {
      // Through <eos> (an untrained model samples it often), so every call makes GENERATE_TOKENS.
      const g = await model.generate({ prompt, maxTokens: GENERATE_TOKENS, temperature: 1, seed: spec.seed + k, stopAtEos: false, details: true });
      return g.ids.length;
    }
    const context = syntheticTokens(CONTEXT_TOKENS, c.vocabSize, spec.seed + k);
    const top = await model.predictNext(context, { topK: TOP_K });
    if (top.length !== TOP_K) throw new Error(`predictNext answered ${top.length} predictions where topK was ${TOP_K}`);
    return 1;
  };
  const round = async () => {
    const ks = Array.from({ length: n }, () => ++calls);
    const t0 = performance.now();
    // Every call is made in this one synchronous pass, before any of them is answered.
    const done = await Promise.all(ks.map(async (k) => {
      const start = performance.now();
      const made = await call(k);
      return { made, ms: performance.now() - start };
    }));
    return { seconds: (performance.now() - t0) / 1000, done };
  };

  r.warmupSeconds = (await round()).seconds;
  report();
  const latencies: number[] = [];
  const summarize = () => {
    if (kind === 'generate') r.tokensPerSecond = r.tokens / r.seconds;
    r.callsPerSecond = r.calls / r.seconds;
    const sorted = [...latencies].sort((a, b) => a - b);
    r.latencyMs = { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted[sorted.length - 1] };
    report();
  };
  let reported = performance.now();
  while (r.rounds === 0 || (r.seconds < spec.seconds && r.calls < MAX_CALLS)) {
    const { seconds, done } = await round();
    r.rounds++;
    r.seconds += seconds;
    r.calls += done.length;
    for (const d of done) {
      r.tokens += d.made;
      latencies.push(d.ms);
      if (kind === 'generate' && d.made < GENERATE_TOKENS) r.shortCalls = (r.shortCalls ?? 0) + 1;
    }
    // Between rounds, at most twice a second (sorting every latency after every short round would add up).
    if (performance.now() - reported > 500) {
      summarize();
      reported = performance.now();
    }
  }
  summarize();
  model.dispose();
  r.finished = true;
  report();
}

if (require.main === module) {
  const send = (m: ConcurrencyRun) => process.send!(m);
  const spec = JSON.parse(process.argv[2]) as ConcurrencySpec;
  measure(spec, send).then(
    () => process.disconnect(),
    (e: Error) => {
      const { peer, kind, n, batching } = spec;
      send({ peer, config: spec.config.name, kind, n, batching, status: 'error', reason: e.stack ?? String(e), rounds: 0, calls: 0, tokens: 0, seconds: 0 });
      process.disconnect();
    },
  );
}
