// After a GPU session: files what the device returned into the repo and prints the figures that
// the GPU issues ask for, each against its target, so that a session spends its time on the
// machine and not on bookkeeping afterwards.
//   node --import tsx gpu/gpu-results.ts FOLDER KIND [--print-only]
// FOLDER: where the device's files landed (the run's files_at), holding any of gpu-check.json
// (sync/gpu-check.json when the async-upload path failed), bench-gpu.json, fixtures.tar,
// reproduce-*-cuda.json. KIND: the machine, as in the result names (h100, h200). Without
// --print-only it copies them to bench/results/ (gpu-KIND.json, gpu-check-KIND.json and
// gpu-check-KIND-sync.json, reproduce-*-cuda.json; gpu-check.json's serve phase as serve-KIND.json),
// unpacks the fixtures into test/reference/fixtures and re-renders the README.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { BenchReport } from '../bench/harness/run';
import type { RunResult } from '../bench/harness/worker';
import { serveTargets, verdict as serveVerdict, type ServeReport } from '../bench/harness/serve';
import { findConfig } from '../bench/harness/configs';
import { flopsFigure, peerPrecision } from '../bench/harness/flops';

const root = join(__dirname, '..');

// The targets of the GPU verification issue (training and generation against PyTorch eager,
// against tfjs-webgpu) and of the published-quality issue (GPU budgets and figures).
const TRAIN_VS_EAGER: Record<string, number> = { 'zaremba-small': 1.2, 'zaremba-medium': 1.2, 'zaremba-large': 1.0, 'keras-gru': 1.0 };
const GEN_VS_EAGER = 2;
const VS_TFJS_WEBGPU = 20;
const BATCHED_VS_ALONE = 20; // aggregate generation tokens/s, 64 concurrent requests against 1
const BROWN = { perplexity: 200, minutes: 20 };
const SHAKESPEARE = { nats: 1.47, minutes: 10 };
// Mixed precision (issue 26): bf16 / fp16 training >= 1.5x our fp32 at these and >= 1.0x PyTorch
// AMP with CUDA graphs; validation loss after 500 steps within 1 % of fp32's.
const HALF_VS_FP32: Record<string, number> = { 'zaremba-large': 1.5, 'char-lstm': 1.5 };
const HALF_VAL_LOSS = 0.01;

/** Every file under a folder, by base name (the device keeps paths below $OUT). */
function files(folder: string): Map<string, string> {
  const found = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else found.set(p.slice(folder.length + 1), p);
    }
  };
  walk(folder);
  return found;
}

/** A reproduce script's result on the GPU (reproduce-brown-cuda.json, reproduce-shakespeare-cuda.json). */
const isReproduce = (name: string) => /^reproduce-.*-cuda\.json$/.test(basename(name));

const fmt = (x: number, d = 2) => x.toFixed(d);
const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
const json = <T>(p: string) => JSON.parse(readFileSync(p, 'utf8')) as T;

interface ParityRow { cell: string; layers: number; maxRelError?: number; pass: boolean; error?: string; limit?: number; algorithm?: string; variant?: string }
interface Throughput { n1: number; n64: number }
/** A phase's rows (one per case; a case that threw has its error), or the phase's own error. */
type Rows<R> = R[] | { error: string };
const firstLine = (error: string) => error.split('\n')[0];
interface GpuCheck {
  cuda?: { device: string; cudnn: number };
  asyncUploads?: boolean;
  dryRun?: boolean;
  parity?: ParityRow[] | { error: string };
  'parity:algorithms'?: ParityRow[] | { error: string };
  'parity:tf32'?: ParityRow[] | { error: string };
  'parity:precision'?: ParityRow[] | { error: string };
  'training:half'?: { rows: { precision: string; relDiff: number; speedup: number; pass: boolean }[]; runs: Record<string, { valLoss: number[]; overflows?: number; lossScale?: number; error?: string }> } | { error: string };
  'parity:sample'?: Record<string, number>;
  'parity:generate'?: Rows<{ cell: string; temperature?: number; agree?: number; n?: number; pass: boolean; error?: string }>;
  'parity:batched'?: Rows<{ cell: string; requests?: number; identical?: number; maxLogProbDiff?: number; pass: boolean; error?: string }>;
  'parity:graphs'?: Rows<{ cell: string; requests?: number; identical?: number; pass: boolean; error?: string }>;
  'throughput:batching'?: { tokens: number; on: Throughput; off: Throughput } | { error: string };
  training?: {
    steps: number; cpu: number[]; cuda: number[]; maxRelDiff: number; tf32?: number[]; maxRelDiffTf32?: number; auto?: number[]; maxRelDiffAuto?: number;
    bf16?: number[]; maxRelDiffBf16?: number; fp16?: number[]; maxRelDiffFp16?: number;
    graphs?: { counts: Record<string, number>; exact: boolean };
  } | { error: string };
  serve?: ServeReport | { error: string };
}

function checkLines(name: string, g: GpuCheck): string[] {
  const out = [`${name}: ${g.dryRun ? 'dry run (no GPU)' : `${g.cuda?.device}, cuDNN ${g.cuda?.cudnn}`}, async uploads ${g.asyncUploads === undefined ? 'not recorded' : g.asyncUploads ? 'on' : 'off'}`];
  const parityLine = (what: string, rows: ParityRow[] | { error: string } | undefined, limit: number) => {
    if (Array.isArray(rows)) {
      const worst = Math.max(...rows.map((r) => r.maxRelError ?? Infinity));
      const failed = rows.filter((r) => !r.pass).map((r) => `${r.cell} x${r.layers}${r.algorithm ? ` ${r.algorithm}` : ''}${r.variant ? ` ${r.variant}` : ''}${r.error ? ` (${firstLine(r.error)})` : ''}`);
      out.push(`  ${what}: ${rows.length} cases, largest relative error ${worst.toExponential(2)} (target <= ${limit}): ${verdict(failed.length === 0)}${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
    } else if (rows) out.push(`  ${what}: FAILED: ${firstLine(rows.error)}`);
  };
  parityLine('parity', g.parity, 1e-4);
  parityLine('parity, each cuDNN algorithm', g['parity:algorithms'], 1e-4);
  parityLine('parity, tf32 against fp32', g['parity:tf32'], 1e-2);
  const precision = g['parity:precision'];
  if (Array.isArray(precision)) {
    // One line per precision, each against its own limit.
    for (const v of [...new Set(precision.map((r) => r.variant ?? '?'))]) {
      const rows = precision.filter((r) => (r.variant ?? '?') === v);
      parityLine(`parity, ${v} against fp32`, rows, rows.find((r) => r.limit !== undefined)?.limit ?? NaN);
    }
  } else parityLine('parity, each precision against fp32', precision, NaN);
  const s = g['parity:sample'];
  if (s) out.push(`  sampler: rows differing ${Object.entries(s).map(([k, v]) => `${k} ${(v * 100).toFixed(3)} %`).join(', ')}`);
  const gen = g['parity:generate'];
  if (Array.isArray(gen)) {
    const row = (r: (typeof gen)[number]) => (r.error ? `${r.cell} ERROR (${firstLine(r.error)})` : `${r.cell} t=${r.temperature} ${r.agree}/${r.n}`);
    out.push(`  generation, CUDA vs CPU: ${gen.map(row).join(', ')}: ${verdict(gen.every((r) => r.pass))}`);
  } else if (gen) out.push(`  generation, CUDA vs CPU: FAILED: ${firstLine(gen.error)}`);
  const bat = g['parity:batched'];
  if (Array.isArray(bat)) {
    const row = (r: (typeof bat)[number]) => (r.error ? `${r.cell} ERROR (${firstLine(r.error)})`
      : `${r.cell} ${fmt(r.identical! * 100, 1)} % of ${r.requests} requests identical, largest log-probability difference ${r.maxLogProbDiff!.toExponential(2)}`);
    out.push(`  generation batched vs alone on CUDA (all identical, log-probabilities within 1e-4): ${bat.map(row).join('; ')}: ${bat.every((r) => r.pass) ? 'PASS' : 'FAIL'}`);
  } else if (bat) out.push(`  generation batched vs alone on CUDA: FAIL: ${firstLine(bat.error)}`);
  const gg = g['parity:graphs'];
  if (Array.isArray(gg)) {
    const row = (r: (typeof gg)[number]) => (r.error ? `${r.cell} ERROR (${firstLine(r.error)})` : `${r.cell} ${r.identical} of ${r.requests}`);
    out.push(`  generation with CUDA graphs vs without (identical): ${gg.map(row).join(', ')}: ${verdict(gg.every((r) => r.pass))}`);
  } else if (gg) out.push(`  generation with CUDA graphs: FAILED: ${firstLine(gg.error)}`);
  const tp = g['throughput:batching'];
  if (tp && 'on' in tp) {
    const tps = (x: number) => Math.round(x).toLocaleString('en-US');
    const ratio = tp.on.n64 / tp.on.n1;
    out.push(`  batching: ${tp.tokens}-token generations, 1 request ${tps(tp.on.n1)} tokens/s, 64 at once ${tps(tp.on.n64)} (${fmt(ratio, 1)}x, target ${BATCHED_VS_ALONE}x: ${verdict(ratio >= BATCHED_VS_ALONE)}); batching off: ${tps(tp.off.n1)} and ${tps(tp.off.n64)}`);
  } else if (tp) out.push(`  batching throughput: FAILED: ${firstLine(tp.error)}`);
  const t = g.training;
  if (t && 'steps' in t) {
    out.push(`  ${t.steps}-step training: final loss ${fmt(t.cpu.at(-1)!, 5)} CPU, ${fmt(t.cuda.at(-1)!, 5)} CUDA, largest relative difference ${t.maxRelDiff.toExponential(2)}`);
    if (t.tf32 && t.maxRelDiffTf32 !== undefined) out.push(`    tf32: final loss ${fmt(t.tf32.at(-1)!, 5)}, largest relative difference from the CPU ${t.maxRelDiffTf32.toExponential(2)}`);
    if (t.graphs) out.push(`    captured as a CUDA graph (${Object.entries(t.graphs.counts).map(([k, v]) => `${k} ${v}`).join(', ')}): losses ${t.graphs.exact ? 'identical to the uncaptured run (target: exact): met' : 'DIFFER from the uncaptured run (target: exact): MISSED'}`);
    if (t.auto && t.maxRelDiffAuto !== undefined) out.push(`    cuDNN algorithm auto: final loss ${fmt(t.auto.at(-1)!, 5)}, largest relative difference from the CPU ${t.maxRelDiffAuto.toExponential(2)}`);
    for (const [p, losses, diff] of [['bf16', t.bf16, t.maxRelDiffBf16], ['fp16 (loss-scaled)', t.fp16, t.maxRelDiffFp16]] as const) {
      if (losses && diff !== undefined) out.push(`    ${p}: final loss ${fmt(losses.at(-1)!, 5)}, largest relative difference from the CPU ${diff.toExponential(2)}`);
    }
  } else if (t) out.push(`  training: FAILED: ${t.error.split('\n')[0]}`);
  const half = g['training:half'];
  if (half && 'rows' in half) {
    const fp32 = half.runs.fp32?.valLoss.at(-1);
    for (const r of half.rows) {
      const run = half.runs[r.precision];
      const loss = run?.valLoss.at(-1);
      out.push(`  500 steps of fit in ${r.precision}: validation loss ${loss === undefined ? (run?.error ? `ERROR (${firstLine(run.error)})` : '—') : fmt(loss, 4)} vs fp32 ${fp32 === undefined ? '—' : fmt(fp32, 4)}, ${fmt(r.relDiff * 100)} % (target <= ${HALF_VAL_LOSS * 100} %: ${verdict(r.pass)}); ${fmt(r.speedup)}x fp32's tokens/s${run?.overflows !== undefined ? `; ${run.overflows} overflows, final loss scale ${run.lossScale}` : ''}`);
    }
  } else if (half) out.push(`  training:half: FAILED: ${firstLine(half.error)}`);
  const sv = g.serve;
  if (sv && 'runs' in sv) out.push(...serveTargets(sv).map((x) => `  serve: ${x.what}: ${x.figure} (${serveVerdict(x)})`));
  else if (sv) out.push(`  serve: FAILED: ${firstLine(sv.error)}`);
  return out;
}

function benchLines(rep: BenchReport): string[] {
  const out = [`benchmarks: ${rep.machine.gpu ?? 'no GPU named'}${rep.partial ? ' (PARTIAL: the run was stopped)' : ''}`];
  const by = (config: string, peer: string): RunResult | undefined => rep.runs.find((r) => r.config === config && r.peer === peer);
  for (const config of [...new Set(rep.runs.map((r) => r.config))]) {
    const ours = by(config, 'rnnlm-cuda');
    if (!ours?.train) {
      out.push(`  ${config}: ours did not run (${ours?.reason?.split('\n')[0] ?? 'no run'})`);
      continue;
    }
    const parts: string[] = [];
    const ratio = (peer: string, what: 'train' | 'generate') => {
      const p = by(config, peer)?.[what]?.tokensPerSecond, o = ours[what]?.tokensPerSecond;
      return p && o ? o / p : undefined;
    };
    const te = ratio('pytorch-eager', 'train'), ge = ratio('pytorch-eager', 'generate');
    const target = TRAIN_VS_EAGER[config];
    if (te !== undefined) parts.push(`train ${fmt(te)}x eager${target ? ` (target ${target}: ${verdict(te >= target)})` : ''}`);
    if (ge !== undefined) parts.push(`generate ${fmt(ge)}x eager (target ${GEN_VS_EAGER}: ${verdict(ge >= GEN_VS_EAGER)})`);
    const tg = ratio('pytorch-cudagraph', 'train'), gg = ratio('pytorch-cudagraph', 'generate');
    if (tg !== undefined || gg !== undefined) parts.push(`vs CUDA graphs ${tg ? fmt(tg) : '—'}x / ${gg ? fmt(gg) : '—'}x`);
    const w = ratio('tfjs-webgpu', 'train');
    const webgpu = by(config, 'tfjs-webgpu');
    if (w !== undefined) parts.push(`train ${fmt(w, 0)}x tfjs-webgpu (target ${VS_TFJS_WEBGPU}: ${verdict(w >= VS_TFJS_WEBGPU)})`);
    else if (webgpu) parts.push(`tfjs-webgpu ${webgpu.status}: ${(webgpu.reason ?? '').split('\n')[0].slice(0, 80)}`);
    const c = findConfig(config);
    if (c) parts.push(`training at ${flopsFigure(c, ours.train.tokensPerSecond, rep.machine.gpu, 'fp32')}`);
    out.push(`  ${config}: ${Math.round(ours.train.tokensPerSecond).toLocaleString('en-US')} training, ${Math.round(ours.generate?.tokensPerSecond ?? 0).toLocaleString('en-US')} generation tokens/s; ${parts.join('; ')}`);
  }
  return out;
}

/**
 * Our CUDA variants (issue 26) against plain fp32 and PyTorch with CUDA graphs, each configuration:
 * graphs' training ÷ PyTorch CUDA graphs is the fp32 target (>= 1.0x), bf16's and fp16's over plain
 * (>= 1.5x at zaremba-large and char-lstm) and over PyTorch AMP with CUDA graphs (>= 1.0x) theirs,
 * and every variant's speed-up over plain rnnlm-cuda is the measure of its change.
 */
function variantLines(rep: BenchReport): string[] {
  const out = [`variants: ${rep.machine.gpu ?? 'no GPU named'}${rep.partial ? ' (PARTIAL: the run was stopped)' : ''}`];
  const by = (config: string, peer: string): RunResult | undefined => rep.runs.find((r) => r.config === config && r.peer === peer);
  for (const config of [...new Set(rep.runs.map((r) => r.config))]) {
    const plain = by(config, 'rnnlm-cuda');
    const parts: string[] = [];
    for (const peer of ['rnnlm-cuda-graphs', 'rnnlm-cuda-auto', 'rnnlm-cuda-tf32', 'rnnlm-cuda-bf16', 'rnnlm-cuda-fp16']) {
      const r = by(config, peer);
      if (!r?.train) {
        if (r) parts.push(`${peer} ${r.status}: ${firstLine(r.reason ?? '')}`);
        continue;
      }
      const over = (what: 'train' | 'generate', base?: RunResult) => {
        const a = r[what]?.tokensPerSecond, b = base?.[what]?.tokensPerSecond;
        return a && b ? `${fmt(a / b)}x` : '—';
      };
      const c = findConfig(config);
      let figure = `${peer.replace('rnnlm-cuda-', '')} ${over('train', plain)} / ${over('generate', plain)} plain${c ? ` (training at ${flopsFigure(c, r.train.tokensPerSecond, rep.machine.gpu, peerPrecision(peer))})` : ''}`;
      const graphs = by(config, 'pytorch-cudagraph');
      if (peer === 'rnnlm-cuda-graphs' && graphs?.train) {
        const t = r.train.tokensPerSecond / graphs.train.tokensPerSecond;
        figure += `, training ${fmt(t)}x PyTorch CUDA graphs (target 1: ${verdict(t >= 1)})`;
      }
      const half = /-(bf16|fp16)$/.exec(peer)?.[1];
      if (half) {
        const target = HALF_VS_FP32[config], speedup = plain?.train ? r.train.tokensPerSecond / plain.train.tokensPerSecond : undefined;
        if (target && speedup !== undefined) figure += ` (training target ${target}x: ${verdict(speedup >= target)})`;
        const amp = by(config, `pytorch-amp-${half}-cudagraph`);
        if (amp?.train) {
          const t = r.train.tokensPerSecond / amp.train.tokensPerSecond;
          figure += `, training ${fmt(t)}x PyTorch AMP ${half} with CUDA graphs (target 1: ${verdict(t >= 1)})`;
        } else if (amp) figure += `, PyTorch AMP ${half} ${amp.status}: ${firstLine(amp.reason ?? '')}`;
      }
      parts.push(figure);
    }
    out.push(`  ${config}: ${plain?.train ? `plain ${Math.round(plain.train.tokensPerSecond).toLocaleString('en-US')} training tokens/s; ` : ''}${parts.join('; ') || 'no variant ran'}`);
  }
  return out;
}

function reproduceLines(name: string, r: Record<string, unknown>): string[] {
  const minutes = Number(r.minutes);
  if (name.includes('brown')) {
    const ppl = Number(r.testPerplexity);
    return [`${name}: test perplexity ${fmt(ppl, 1)} in ${minutes} min (target <= ${BROWN.perplexity} in ${BROWN.minutes} min: ${verdict(ppl <= BROWN.perplexity)}${minutes < BROWN.minutes ? ', on a shorter budget' : ''}), best epoch ${r.bestEpoch}`];
  }
  const nats = Number(r.finalValidationLoss);
  return [`${name}: validation ${fmt(nats, 3)} nats/char in ${minutes} min (target <= ${SHAKESPEARE.nats} in ${SHAKESPEARE.minutes} min: ${verdict(nats <= SHAKESPEARE.nats)}${minutes < SHAKESPEARE.minutes ? ', on a shorter budget' : ''}), best epoch ${r.bestEpoch}`];
}

/** The summary of whatever FOLDER holds, one line per figure. */
export function summarize(folder: string): string[] {
  const f = files(folder);
  const lines: string[] = [];
  for (const name of ['gpu-check.json', 'sync/gpu-check.json']) if (f.has(name)) lines.push(...checkLines(name, json<GpuCheck>(f.get(name)!)));
  if (f.has('bench-gpu.json')) lines.push(...benchLines(json<BenchReport>(f.get('bench-gpu.json')!)));
  if (f.has('bench-gpu-variants.json')) lines.push(...variantLines(json<BenchReport>(f.get('bench-gpu-variants.json')!)));
  for (const [name, p] of f) if (isReproduce(name)) lines.push(...reproduceLines(basename(name), json(p)));
  if (f.has('fixtures.tar')) lines.push('fixtures.tar: PyTorch (cuDNN) fixtures for test/reference/fixtures');
  if (lines.length === 0) lines.push(`nothing to summarize in ${folder} (expected gpu-check.json, bench-gpu.json, fixtures.tar or reproduce-*-cuda.json)`);
  return lines;
}

function main() {
  const [folder, kind, flag] = process.argv.slice(2);
  if (!folder || !kind || !/^[a-z0-9-]+$/.test(kind) || (flag && flag !== '--print-only')) {
    console.error('usage: node --import tsx gpu/gpu-results.ts FOLDER KIND(h100|h200) [--print-only]');
    process.exit(2);
  }
  console.log(summarize(folder).join('\n'));
  if (flag === '--print-only') return;
  const f = files(folder);
  const results = join(root, 'bench', 'results');
  // Both checks when the async-upload path failed: that run's failure, and the synchronous rerun.
  const copies: [string | undefined, string][] = [
    [f.get('gpu-check.json'), `gpu-check-${kind}.json`],
    [f.get('sync/gpu-check.json'), `gpu-check-${kind}-sync.json`],
    [f.get('bench-gpu.json'), `gpu-${kind}.json`],
    [f.get('bench-gpu-variants.json'), `gpu-variants-${kind}.json`],
    ...[...f].filter(([n]) => isReproduce(n)).map(([, p]) => [p, basename(p)] as [string, string]),
  ];
  for (const [from, to] of copies) {
    if (!from) continue;
    copyFileSync(from, join(results, to));
    console.log(`copied ${to}`);
  }
  const check = f.get('gpu-check.json') && json<GpuCheck>(f.get('gpu-check.json')!);
  const serve = check && check.serve && 'runs' in check.serve ? check.serve : undefined;
  if (serve) {
    writeFileSync(join(results, `serve-${kind}.json`), `${JSON.stringify(serve, null, 2)}\n`);
    console.log(`wrote serve-${kind}.json (gpu-check.json's serve phase)`);
  }
  if (f.has('fixtures.tar')) {
    execFileSync('tar', ['-C', join(root, 'test', 'reference'), '-xf', f.get('fixtures.tar')!], { stdio: 'inherit' });
    console.log('unpacked fixtures into test/reference/fixtures');
  }
  if (serve || existsSync(join(results, `gpu-${kind}.json`))) execFileSync(process.execPath, ['--import', 'tsx', join(root, 'bench', 'render.ts')], { stdio: 'inherit' });
}

if (typeof module !== 'undefined' && require.main === module) main();
