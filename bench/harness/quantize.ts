/**
 * The quantization benchmark (npm run bench:quantize, issue 25): for each trained model of
 * quantize-models.ts, float32 against int8 for us — batch-1 generation tokens/s, predictNext
 * latency, evaluate tokens/s and perplexity, file sizes of every save dtype — and PyTorch's
 * quantize_dynamic on the same weights (bench/pytorch_quantized.py, run on the same text and
 * prompt ids). Our two models are measured alternately, round after round, so that both see the
 * same machine; each figure is the median of its rounds (evaluate: one pass over the whole text,
 * in the first round).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LanguageModel } from '../../lib/index';
import { benchModels, type BenchModel } from './quantize-models';
import { quantile } from './stats';

export interface QuantizeOptions {
  trainMinutes: number;
  seconds: number;
  rounds: number;
  python: string;
  threads: number;
  json?: string;
}

/** One engine's figures from bench/pytorch_quantized.py. */
interface PyTorchModel {
  name: string;
  status: 'ok' | 'error';
  error?: string;
  generate?: { tokensPerSecond: number };
  predictNext?: { medianMs: number; p90Ms: number };
  evaluate?: { tokensPerSecond: number; perplexity: number };
  fileBytes?: number;
}

export interface QuantizeResult {
  model: string;
  corpus: string;
  parameters: number;
  files: Record<'f32' | 'f16' | 'bf16' | 'int8', number>;
  ours: { f32: Measured; int8: Measured };
  ratios: Record<'generateInt8OverF32' | 'evaluateInt8OverF32' | 'predictNextF32OverInt8' | 'perplexityIncrease' | 'int8FileOverF32' | 'f16FileOverF32', number>;
  pytorch: { torch?: string; threads?: number; models?: PyTorchModel[]; status?: string; error?: string };
}

export interface QuantizeReport {
  kind: 'rnnlm-quantize-bench';
  date: string;
  machine: { cpu: string; cores: number; node: string; loadAverage: number; gpu?: undefined; nvidiaDriver?: undefined };
  options: { quick: false; trainMinutes: number; seconds: number; rounds: number; pytorchThreads: number };
  commit?: string;
  results: QuantizeResult[];
  partial?: boolean;
}

interface Measured {
  generate: { tokensPerSecond: number };
  predictNext: { medianMs: number; p90Ms: number };
  evaluate: { tokensPerSecond: number; perplexity: number; tokens: number };
}

/** Unsorted values sorted, and their lower median. */
const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => quantile(sorted(xs), 0.5);

/** One round of generation and predictNext on one model, and with `evaluate` the whole evaluation text once (its pass is long enough to time alone). */
async function measure(m: LanguageModel, bm: BenchModel, evalIds: Int32Array, promptIds: Int32Array, seconds: number, evaluate: boolean) {
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
  if (!evaluate) return { generate, lat };
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
        runs.f32.push(await measure(f32, bm, evalIds, promptIds, o.seconds, r === 0));
        runs.int8.push(await measure(int8, bm, evalIds, promptIds, o.seconds, r === 0));
      }
      const sum = (rs: typeof runs.f32): Measured => ({
        generate: { tokensPerSecond: median(rs.map((x) => x.generate)) },
        predictNext: { medianMs: median(rs.flatMap((x) => x.lat)), p90Ms: quantile(sorted(rs.flatMap((x) => x.lat)), 0.9) },
        evaluate: { tokensPerSecond: rs[0].ev!.tokens / rs[0].evalSeconds!, perplexity: rs[0].ev!.perplexity, tokens: rs[0].ev!.tokens },
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
  const report: QuantizeReport = {
    kind: 'rnnlm-quantize-bench', date: new Date().toISOString(),
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, loadAverage: Number(load.toFixed(2)) },
    options: { quick: false, trainMinutes: o.trainMinutes, seconds: o.seconds, rounds: o.rounds, pytorchThreads: o.threads },
    commit: gitCommit(),
    results: results as QuantizeResult[],
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

function gitCommit(): string | undefined {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: join(__dirname, '..', '..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const fmt = (x: number, digits = 0) => x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const mb = (bytes: number) => fmt(bytes / 1e6, 2);

/** PyTorch's best int8 engine at a measure (higher is better unless `lower`); generation's is the one the targets compare with. */
export function bestPyTorchInt8(r: QuantizeResult, score: (m: PyTorchModel) => number = (m) => m.generate!.tokensPerSecond): PyTorchModel | undefined {
  const ok = (r.pytorch.models ?? []).filter((m) => m.name.startsWith('int8-') && m.status === 'ok');
  return ok.sort((a, b) => score(b) - score(a))[0];
}

/** The README's table of one report (npm run bench:render), then the issue's targets, each met or missed. */
export function quantizeTable(rep: QuantizeReport): string {
  const lines = [
    `Each model float32 and int8 alternately, ${rep.options.rounds} rounds of ${rep.options.seconds} s of generation and of predictNext (medians), evaluate once over the whole text; PyTorch ${rep.results[0]?.pytorch.torch ?? ''} on ${rep.options.pytorchThreads} threads, every quantized engine it has. Models trained for ${rep.options.trainMinutes} minutes each (bench/harness/quantize-models.ts)${rep.commit ? `; commit ${rep.commit}` : ''}.`,
    '',
    '| model | measure | rnnlm float32 | rnnlm int8 | int8 ÷ float32 | PyTorch float32 | PyTorch int8 (its best engine at the measure) | our int8 ÷ PyTorch int8 |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
  ];
  const targets: string[] = [];
  for (const r of rep.results) {
    const o = r.ours, pf = (r.pytorch.models ?? []).find((m) => m.name === 'float32' && m.status === 'ok'), pq = bestPyTorchInt8(r);
    const eng = (m: PyTorchModel) => ` (${m.name.slice(5)})`;
    const pp = bestPyTorchInt8(r, (m) => -m.predictNext!.medianMs), pe = bestPyTorchInt8(r, (m) => m.evaluate!.tokensPerSecond);
    const pct = (x: number) => `${x > 5e-5 ? '+' : x < -5e-5 ? '−' : '±'}${fmt(Math.abs(100 * x), 2)} %`;
    const name = `${r.model} (${r.corpus})`;
    lines.push(
      `| ${name} | generation tokens/s (batch 1) | ${fmt(o.f32.generate.tokensPerSecond)} | ${fmt(o.int8.generate.tokensPerSecond)} | ${fmt(r.ratios.generateInt8OverF32, 2)}× | ${pf ? fmt(pf.generate!.tokensPerSecond) : '—'} | ${pq ? fmt(pq.generate!.tokensPerSecond) + eng(pq) : '—'} | ${pq ? fmt(o.int8.generate.tokensPerSecond / pq.generate!.tokensPerSecond, 2) + '×' : '—'} |`,
      `| | predictNext median ms (20-token context) | ${fmt(o.f32.predictNext.medianMs, 2)} | ${fmt(o.int8.predictNext.medianMs, 2)} | ${fmt(r.ratios.predictNextF32OverInt8, 2)}× faster | ${pf ? fmt(pf.predictNext!.medianMs, 2) : '—'} | ${pp ? fmt(pp.predictNext!.medianMs, 2) + eng(pp) : '—'} | |`,
      `| | evaluate tokens/s | ${fmt(o.f32.evaluate.tokensPerSecond)} | ${fmt(o.int8.evaluate.tokensPerSecond)} | ${fmt(r.ratios.evaluateInt8OverF32, 2)}× | ${pf ? fmt(pf.evaluate!.tokensPerSecond) : '—'} | ${pe ? fmt(pe.evaluate!.tokensPerSecond) + eng(pe) : '—'} | |`,
      `| | perplexity (${fmt(o.f32.evaluate.tokens)} tokens) | ${fmt(o.f32.evaluate.perplexity, 3)} | ${fmt(o.int8.evaluate.perplexity, 3)} | ${pct(r.ratios.perplexityIncrease)} | ${pf ? fmt(pf.evaluate!.perplexity, 3) : '—'} | ${(r.pytorch.models ?? []).filter((m) => m.name.startsWith('int8-') && m.status === 'ok').map((m) => fmt(m.evaluate!.perplexity, 3) + eng(m)).join(', ') || '—'} | |`,
      `| | file MB (f32 / f16 / bf16 / int8) | ${mb(r.files.f32)} | ${mb(r.files.int8)} | ${fmt(100 * r.ratios.int8FileOverF32, 1)} % (f16 ${fmt(100 * r.ratios.f16FileOverF32, 1)} %, bf16 ${fmt((100 * r.files.bf16) / r.files.f32, 1)} %) | ${pf?.fileBytes ? mb(pf.fileBytes) : '—'} | ${pq?.fileBytes ? mb(pq.fileBytes) + eng(pq) : '—'} | |`,
    );
    const met = (ok: boolean) => (ok ? 'met' : '**missed**');
    targets.push(
      `- ${r.model}: int8 generation ${fmt(r.ratios.generateInt8OverF32, 2)}× our float32 (target 2.5×) — ${met(r.ratios.generateInt8OverF32 >= 2.5)}; ` +
        `${pq ? `${fmt(o.int8.generate.tokensPerSecond / pq.generate!.tokensPerSecond, 2)}× PyTorch's int8 (${pq.name.slice(5)}; target 2×) — ${met(o.int8.generate.tokensPerSecond >= 2 * pq.generate!.tokensPerSecond)}` : 'PyTorch int8 did not run'}; ` +
        `perplexity ${pct(r.ratios.perplexityIncrease)} (target ≤ +1 %) — ${met(r.ratios.perplexityIncrease <= 0.01)}; ` +
        `int8 file ${fmt(100 * r.ratios.int8FileOverF32, 1)} % of float32 (≤ 30 %) — ${met(r.ratios.int8FileOverF32 <= 0.3)}; f16 ${fmt(100 * r.ratios.f16FileOverF32, 1)} % (≤ 51 %) — ${met(r.ratios.f16FileOverF32 <= 0.51)}`,
    );
  }
  return [...lines, '', 'Targets (issue 25):', '', ...targets].join('\n');
}
