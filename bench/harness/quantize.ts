/**
 * The quantization benchmark (npm run bench:quantize, issue 25): for each trained model of
 * quantize-models.ts, float32 against int8 for us — batch-1 generation tokens/s, predictNext
 * latency, evaluate tokens/s and perplexity, file sizes of every save dtype — and PyTorch's
 * quantize_dynamic on the same weights (bench/pytorch_quantized.py, run on the same text and
 * prompt ids). Our two models are measured alternately, round after round, so that both see the
 * same machine; each figure is the median of its rounds.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanguageModel } from '../../lib/index';
import { benchModels, type BenchModel } from './quantize-models';

export interface QuantizeOptions {
  trainMinutes: number;
  seconds: number;
  rounds: number;
  python: string;
  threads: number;
  json?: string;
}

interface Measured {
  generate: { tokensPerSecond: number };
  predictNext: { medianMs: number; p90Ms: number };
  evaluate: { tokensPerSecond: number; perplexity: number; tokens: number };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)];

/** One round of every measure on one model. */
async function measure(m: LanguageModel, bm: BenchModel, evalIds: Int32Array, promptIds: Int32Array, seconds: number) {
  let tokens = 0, seed = 1;
  const g0 = performance.now();
  while (performance.now() - g0 < seconds * 1000) {
    const g = await m.generate({ prompt: promptIds, maxTokens: 500, seed: seed++, stopAtEos: false, details: true });
    tokens += g.ids.length;
  }
  const generate = tokens / ((performance.now() - g0) / 1000);
  const lat: number[] = [];
  const p0 = performance.now();
  while (performance.now() - p0 < seconds * 1000) {
    const t = performance.now();
    await m.predictNext(promptIds, { topK: 5 });
    lat.push(performance.now() - t);
  }
  const e0 = performance.now();
  const ev = await m.evaluate(evalIds, bm.evalShape);
  const evalSeconds = (performance.now() - e0) / 1000;
  return { generate, lat, ev, evalSeconds };
}

export async function runQuantizeBench(o: QuantizeOptions): Promise<{ ok: boolean }> {
  const models = await benchModels(o.trainMinutes, join(__dirname, '..', '.cache', 'quantize'));
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-quantize-'));
  const load = loadavg()[0];
  const results = [];
  try {
    for (const bm of models) {
      const f32 = await LanguageModel.load(bm.file, { device: 'cpu' });
      const int8 = await f32.quantize('int8');
      const evalIds = Int32Array.from(f32.tokenizer!.encode(bm.evalText));
      const promptIds = Int32Array.from(f32.tokenizer!.encode(bm.prompt)).subarray(0, 20);
      // File sizes of every dtype, and the int8 file's model equal to the quantized one.
      const files: Record<string, number> = {};
      for (const dtype of ['f32', 'f16', 'bf16', 'int8'] as const) {
        const path = join(dir, `${bm.name}-${dtype}.safetensors`);
        await f32.save(path, { dtype });
        files[dtype] = statSync(path).size;
      }
      console.error(`${bm.name}: measuring float32 and int8 alternately, ${o.rounds} rounds of ${o.seconds} s per measure`);
      const runs = { f32: [] as Awaited<ReturnType<typeof measure>>[], int8: [] as Awaited<ReturnType<typeof measure>>[] };
      for (let r = 0; r < o.rounds; r++) {
        runs.f32.push(await measure(f32, bm, evalIds, promptIds, o.seconds));
        runs.int8.push(await measure(int8, bm, evalIds, promptIds, o.seconds));
      }
      const sum = (rs: typeof runs.f32): Measured => ({
        generate: { tokensPerSecond: median(rs.map((x) => x.generate)) },
        predictNext: { medianMs: median(rs.flatMap((x) => x.lat)), p90Ms: quantile(rs.flatMap((x) => x.lat), 0.9) },
        evaluate: { tokensPerSecond: median(rs.map((x) => x.ev.tokens / x.evalSeconds)), perplexity: rs[0].ev.perplexity, tokens: rs[0].ev.tokens },
      });
      const ours = { f32: sum(runs.f32), int8: sum(runs.int8) };
      const evalFile = join(dir, `${bm.name}.eval.i32`), promptFile = join(dir, `${bm.name}.prompt.i32`);
      writeFileSync(evalFile, Buffer.from(evalIds.buffer, evalIds.byteOffset, evalIds.byteLength));
      writeFileSync(promptFile, Buffer.from(promptIds.buffer, promptIds.byteOffset, promptIds.byteLength));
      console.error(`${bm.name}: PyTorch (${o.python} bench/pytorch_quantized.py, ${o.threads} threads)`);
      let pytorch: unknown;
      try {
        pytorch = JSON.parse(execFileSync(o.python, [join(__dirname, '..', 'pytorch_quantized.py'), '--checkpoint', bm.file, '--eval-ids', evalFile, '--prompt-ids', promptFile,
          '--seconds', String(o.seconds), '--threads', String(o.threads), '--engines', 'onednn,qnnpack,fbgemm,x86', '--eval-batch', String(bm.evalShape.batchSize), '--eval-seq', String(bm.evalShape.seqLength)],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24 }));
      } catch (e) {
        pytorch = { status: 'error', error: String((e as Error).message).split('\n')[0] };
      }
      const ratio = (a: number, b: number) => a / b;
      results.push({
        model: bm.name, corpus: bm.corpus, config: f32.config, parameters: f32.parameterCount, evalShape: bm.evalShape, files,
        ours,
        ratios: {
          generateInt8OverF32: ratio(ours.int8.generate.tokensPerSecond, ours.f32.generate.tokensPerSecond),
          evaluateInt8OverF32: ratio(ours.int8.evaluate.tokensPerSecond, ours.f32.evaluate.tokensPerSecond),
          predictNextF32OverInt8: ratio(ours.f32.predictNext.medianMs, ours.int8.predictNext.medianMs),
          perplexityIncrease: ratio(ours.int8.evaluate.perplexity, ours.f32.evaluate.perplexity) - 1,
          int8FileOverF32: ratio(files.int8, files.f32),
          f16FileOverF32: ratio(files.f16, files.f32),
        },
        pytorch,
      });
      f32.dispose();
      int8.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const report = {
    kind: 'quantize', date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model, cores: cpus().length, loadAverageAtStart: load },
    options: { trainMinutes: o.trainMinutes, seconds: o.seconds, rounds: o.rounds, pytorchThreads: o.threads },
    results,
  };
  if (o.json) writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
  for (const r of results) {
    const q = r.ours;
    console.log(`${r.model}: generate ${q.f32.generate.tokensPerSecond.toFixed(0)} -> ${q.int8.generate.tokensPerSecond.toFixed(0)} tok/s (${r.ratios.generateInt8OverF32.toFixed(2)}x); ` +
      `predictNext ${q.f32.predictNext.medianMs.toFixed(2)} -> ${q.int8.predictNext.medianMs.toFixed(2)} ms; evaluate ${q.f32.evaluate.tokensPerSecond.toFixed(0)} -> ${q.int8.evaluate.tokensPerSecond.toFixed(0)} tok/s; ` +
      `perplexity ${q.f32.evaluate.perplexity.toFixed(3)} -> ${q.int8.evaluate.perplexity.toFixed(3)} (${(100 * r.ratios.perplexityIncrease).toFixed(2)} %); files f32 ${r.files.f32} f16 ${r.files.f16} int8 ${r.files.int8}`);
  }
  return { ok: true };
}
