// npm run bench:render — the README's benchmark tables and bench/results/bench.svg, from the
// JSON reports that `npm run bench -- --json bench/results/<name>.json`, `npm run bench:serve` and
// `npm run bench:adaptive` wrote. Every figure in
// the README's benchmark section comes from those files; nothing is typed in by hand.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AdaptiveReport, AdaptiveRun } from './harness/adaptive';
import { quantizeTable, type QuantizeReport } from './harness/quantize';
import { aggregate, CONTEXT_TOKENS, concurrencyTargets, counterpart, GENERATE_TOKENS, ms, ratio, TOP_K, type ConcurrencyRun } from './harness/concurrency';
import { CONFIGS, findConfig } from './harness/configs';
import { flopsFigure, peerPrecision } from './harness/flops';
import { type BenchReport, type GraphicsFacts, oursFor } from './harness/run';
import {
  COMPLETION_TOKENS, CONTEXT_WORDS, errorsCell, NEXT_TOP_K, PROMPT_WORDS, runKey, serveTargets, verdict, type ServeReport, type ServeRun,
} from './harness/serve';
import type { RunResult } from './harness/worker';

const dir = join(__dirname, 'results');
const readme = join(__dirname, '..', 'README.md');

/** The full (not --quick) reports of one kind in bench/results/, oldest first. */
const readReports = <R extends BenchReport | ServeReport | AdaptiveReport | QuantizeReport>(kind: R['kind']): { file: string; report: R }[] => readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => ({ file: f, report: JSON.parse(readFileSync(join(dir, f), 'utf8')) as R }))
  .filter((r) => r.report.kind === kind && !r.report.options.quick)
  .sort((a, b) => a.report.date.localeCompare(b.report.date));

/** Text for an SVG text node or attribute (a timed-out run's label is "< 1.4"). */
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const firstLine = (reason?: string) => (reason ?? 'no reason given').split('\n')[0].replace(/\s*Tried:?\s*$/, '');
const n = (x: number) => x.toLocaleString('en-US', { maximumFractionDigits: x < 10 ? 2 : x < 100 ? 1 : 0 });
const below = (r: RunResult) => (r as { trainTokensPerSecondBelow?: number }).trainTokensPerSecondBelow;
const trainCell = (r: RunResult) => (r.train?.tokensPerSecond ? n(r.train.tokensPerSecond) : below(r) ? `< ${n(below(r)!)}` : '—');
const shape = (name: string) => {
  const c = findConfig(name);
  return c ? `${c.cell.toUpperCase()} ${c.layers} × ${c.hiddenSize}, emb ${c.embeddingSize}, ${c.batchSize} × ${c.seqLength}, V ${n(c.vocabSize)}` : name;
};

/** Library versions the runs reported (cuDNN as 91400 -> 9.14.0). */
function versions(rep: BenchReport): string {
  const seen = new Set<string>();
  for (const r of rep.runs) {
    const i = r.info ?? {};
    if (r.peer === 'rnnlm-cuda' && i.cudnn) seen.add(`rnnlm cuDNN ${cudnn(Number(i.cudnn))}`);
    if (i.torch) seen.add(`PyTorch ${i.torch} (${i.cudnn ? `cuDNN ${cudnn(Number(i.cudnn))}` : `${blasName(String(i.blas))}; torch threads ${i.torchThreads}, BLAS threads ${i.blasThreads}`})`);
    if (r.peer.startsWith('tfjs') && i.version) seen.add(`tfjs ${i.version}`);
  }
  return seen.size ? `, ${[...seen].join(', ')}` : '';
}
/** The BLAS itself out of the libraries a peer had mapped (libblas.so.3 is only the alternatives link). */
const blasName = (libs: string) => libs.split(', ').filter((l) => /openblas|mkl|blis/i.test(l)).join(', ') || libs;
const cudnn = (v: number) => `${Math.floor(v / 10000)}.${Math.floor(v / 100) % 100}.${v % 100}`;

/** A report's first line: the machine, the versions, the date and the file. */
function heading(rep: BenchReport | ServeReport | AdaptiveReport | QuantizeReport, file: string): string {
  const m = rep.machine;
  return `**${m.cpu}, ${m.cores} cores${m.gpu ? `, ${m.gpu}${m.nvidiaDriver ? ` (driver ${m.nvidiaDriver})` : ''}` : ''}** — Node ${m.node}${rep.kind === 'rnnlm-bench' ? versions(rep) : ''}, ${rep.date.slice(0, 10)}${m.loadAverage !== undefined ? `, load average ${m.loadAverage} at its start` : ''}, \`bench/results/${file}\`${rep.partial ? ` — **partial: the run was stopped before its last ${rep.kind === 'rnnlm-bench' ? 'configuration' : 'run'}**` : ''}`;
}

/** The container's graphics facts (bench/harness/run.ts's graphicsFacts), as one line. */
export function graphicsLine(g: GraphicsFacts): string {
  const yes = (b: boolean) => (b ? 'found' : 'absent');
  const libs = Object.entries(g.libraries).map(([lib, b]) => `${lib} ${yes(b)}`).join(', ');
  return `graphics in this container: NVIDIA_DRIVER_CAPABILITIES ${g.driverCapabilities === null ? 'unset' : `\`${g.driverCapabilities}\``}; ` +
    `Vulkan ICD files: ${g.vulkanIcds.length ? g.vulkanIcds.map((f) => `\`${f}\``).join(', ') : 'none'}; ${libs}`;
}

function table(rep: BenchReport): string {
  const m = rep.machine;
  const out = [
    `| configuration | peer | training tokens/s | generation tokens/s | peak RSS MiB |${m.gpu ? ' peak GPU MiB |' : ''} ours ÷ peer (train / generate) |`,
    `|---|---|---:|---:|---:|${m.gpu ? '---:|' : ''}---|`,
  ];
  for (const r of rep.runs) {
    if (r.status === 'unavailable') continue;
    const ours = rep.runs.find((o) => o.config === r.config && o.peer === oursFor(r.peer));
    let ratio = '';
    if (!r.peer.startsWith('rnnlm') && ours?.train?.tokensPerSecond) {
      const t = r.train?.tokensPerSecond ?? below(r);
      const g = r.generate?.tokensPerSecond;
      const fmt = (x: number) => `${n(x)}×`;
      ratio = `${t ? `${r.train?.tokensPerSecond ? '' : '> '}${fmt(ours.train.tokensPerSecond / t)}` : '—'} / ${g && ours.generate ? fmt(ours.generate.tokensPerSecond / g) : '—'}`;
    }
    const gpu = m.gpu ? ` ${r.peakDeviceMiB ? n(r.peakDeviceMiB) : '—'} |` : '';
    out.push(`| ${r.config} | ${r.peer} | ${trainCell(r)} | ${r.generate ? n(r.generate.tokensPerSecond) : '—'} | ${r.peakRssMiB ? n(r.peakRssMiB) : '—'} |${gpu} ${ratio} |`);
  }
  const unavailable = rep.runs.filter((r) => r.status === 'unavailable');
  const notes = [...new Set(rep.runs.flatMap((r) => r.notes.map((x) => `${r.peer}: ${x}`)))];
  const all: (RunResult & { axis?: string; value?: number })[] = [...rep.runs, ...(rep.scaling ?? [])];
  const failed = all.filter((r) => r.status === 'timeout' || r.status === 'error');
  const stopped = failed.map((r) => `${r.peer} on ${r.axis ? `${r.axis} ${r.value}` : r.config}: ${r.status === 'error' ? 'failed: ' : ''}${firstLine(r.reason)}`);
  for (const x of [...notes, ...stopped, ...[...new Set(unavailable.map((r) => `${r.peer}: not run — ${firstLine(r.reason)}`))]]) out.push('', `- ${x}`);
  if (m.graphics) out.push('', `- ${graphicsLine(m.graphics)}`);
  if (m.gpu) {
    // The physical limit: our training's FLOP rate (matrix products only) against the GPU's peak.
    const limit = rep.runs.filter((r) => r.peer.startsWith('rnnlm-cuda') && r.train && findConfig(r.config))
      .map((r) => `${r.config}${r.peer === 'rnnlm-cuda' ? '' : ` (${r.peer})`} ${flopsFigure(findConfig(r.config)!, r.train!.tokensPerSecond, m.gpu, peerPrecision(r.peer))}`);
    if (limit.length) out.push('', `- rnnlm's training against the GPU's limit (matrix products' FLOPs per token × tokens/s; dense peak of the precision): ${limit.join('; ')}.`);
  }
  const allocs = rep.runs.filter((r) => r.train?.allocationsPerStep !== undefined).map((r) => `${r.config} ${n(r.train!.allocationsPerStep!)}`);
  if (allocs.length) out.push('', `- rnnlm device allocations per training step after warm-up: ${allocs.join(', ')}.`);
  if (rep.scaling?.length) out.push('', scalingTable(rep));
  return out.join('\n');
}

/** The concurrency scenario: batching on and off side by side, one row per configuration, call and N. */
function concurrencyTable(runs: ConcurrencyRun[]): string {
  const out = [
    `Concurrent calls on one model (weights as initialised: speed does not depend on their values), each figure measured in its own process: N calls started together, rounds repeated for a few seconds after one warm-up round. generate makes ${GENERATE_TOKENS} tokens per call (temperature 1, through \`<eos>\`), predictNext reads a ${CONTEXT_TOKENS}-token context (top ${TOP_K}). Aggregate: tokens (generate) or calls (predictNext) per second of the rounds' wall time; p50 / p99: one call's latency, from its start to its answer; on ÷ off: aggregate with batching over without, at the same N.`,
    '',
    '| configuration | peer | call | N | batching on: aggregate | p50 / p99 ms | peak RSS MiB | batching off: aggregate | p50 / p99 ms | peak RSS MiB | on ÷ off |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const cells = (r?: ConcurrencyRun) => {
    if (!r) return ['—', '—', '—'];
    const x = aggregate(r);
    const figure = x ? `${n(x)} ${r.kind === 'generate' ? 'tokens/s' : 'calls/s'}${r.status === 'ok' ? '' : ` (${r.status})`}` : r.status;
    return [figure, r.latencyMs ? `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)}` : '—', r.peakRssMiB ? n(r.peakRssMiB) : '—'];
  };
  for (const on of runs.filter((r) => r.batching && r.status !== 'unavailable')) {
    const off = counterpart(runs, on);
    const x = ratio(on, off);
    out.push(`| ${on.config} | ${on.peer} | ${on.kind} | ${on.n} | ${[...cells(on), ...cells(off)].join(' | ')} | ${x ? `${n(x)}×` : '—'} |`);
  }
  const failed = runs.filter((r) => r.status === 'error' || r.status === 'timeout');
  for (const r of failed) out.push('', `- ${r.peer} on ${r.config}, ${r.kind} N = ${r.n}, batching ${r.batching ? 'on' : 'off'}: ${r.status === 'error' ? 'failed: ' : ''}${firstLine(r.reason)}`);
  const unavailable = new Set(runs.filter((r) => r.status === 'unavailable').map((r) => `${r.peer}: not run — ${firstLine(r.reason)}`));
  for (const x of unavailable) out.push('', `- ${x}`);
  const targets = concurrencyTargets(runs);
  if (targets.length) out.push('', 'Targets (issue 22):', '', ...targets.map((t) => `- ${t}`));
  return out.join('\n');
}

/** The server benchmark (npm run bench:serve): what was run, one row per run (batching on and off next to each other), the servers' lives, the targets. */
function serveTable(rep: ServeReport): string {
  const o = rep.options, m = rep.model, l = o.limits;
  const out = [
    `\`npm run bench:serve\`: \`rnnlm serve --device ${o.device}\` in its own process (one per batching mode, serving every run of that mode; in a clone, \`node --import tsx lib/cli.ts serve\`, whose TypeScript loader is part of its RSS) under autocannon on the same machine: ${o.connections.join(', ')} keep-alive connections with one request in flight on each, ${n(o.duration)} s per run after ${n(o.warmup)} s of warm-up (not counted). The model: ${m.config}'s sizes (${m.cell.toUpperCase()} ${m.layers} × ${m.hiddenSize}, embedding ${m.embeddingSize}, vocabulary ${n(m.vocabSize)}: ${n(m.parameters)} parameters), a ${m.tokenizer} tokenizer, weights ${m.weights}. \`/v1/completions\`: a prompt of ${PROMPT_WORDS} words, \`max_tokens\` ${COMPLETION_TOKENS}, \`ignore_eos\`, a seed per request (tokens/s: the answers' \`usage.completion_tokens\` per second); \`/v1/next\`: a context of ${CONTEXT_WORDS} words, \`top_k\` ${NEXT_TOP_K}. Server limits: ${l.maxConcurrent} requests computing at once, ${l.maxQueue} waiting (beyond: 503), ${l.timeout} s per request, batches of ${l.maxBatchSize} rows at most; the client gives up on an answer after ${o.clientTimeout} s. Requests/s: 2xx answers per second. Latency: each 2xx answer, from its request's setup to its last byte. Errors: non-2xx answers by status, timeouts, connection errors, and bodies that fail the check (every completion's, every 16th \`/v1/next\` answer's). RSS: the server's VmRSS when the measured part starts and ends, and the most sampled (once a second) in the run; CPU cores: CPU time per second of the measured part, of the server's process, of the load generator's (both on the same cores) and of every other process on the machine (its other users' work); on ÷ off: tokens/s (completions) or requests/s (next) with batching over without.`,
    '',
    '| endpoint | connections | batching | requests/s | tokens/s | p50 / p99 ms | errors | RSS MiB: start → end (peak) | CPU cores: server + load generator + others | on ÷ off |',
    '|---|---:|---|---:|---:|---:|---|---:|---:|---:|',
  ];
  const rate = (r?: ServeRun) => (r?.status !== 'ok' ? undefined : r.endpoint === '/v1/completions' ? r.tokensPerSecond : r.requestsPerSecond);
  const rows = [...rep.runs].sort((a, b) => o.endpoints.indexOf(a.endpoint) - o.endpoints.indexOf(b.endpoint) || a.connections - b.connections || Number(b.batching) - Number(a.batching));
  for (const r of rows) {
    const other = rep.runs.find((x) => x.endpoint === r.endpoint && x.connections === r.connections && x.batching === !r.batching);
    const x = r.batching ? rate(r) : undefined, y = rate(other);
    const status = r.status === 'ok' ? '' : ` (${r.status})`;
    out.push(`| ${r.endpoint} | ${r.connections} | ${r.batching ? 'on' : 'off'} | ${r.requestsPerSecond ? n(r.requestsPerSecond) : '—'}${status} | ${r.tokensPerSecond ? n(r.tokensPerSecond) : '—'} | ${r.latencyMs ? `${ms(r.latencyMs.p50)} / ${ms(r.latencyMs.p99)}` : '—'} | ${errorsCell(r.errors)} | ${r.rssMiB ? `${n(r.rssMiB.start)} → ${n(r.rssMiB.end)} (${n(r.rssMiB.peak)})` : '—'} | ${r.cpuCores ? `${n(r.cpuCores.server)} + ${n(r.cpuCores.client)} + ${n(r.cpuCores.others)}` : '—'} | ${x && y ? `${n(x / y)}×` : ''} |`);
  }
  for (const s of rep.servers) {
    const rss = s.rssMiB ? `; RSS ${n(s.rssMiB.afterLoad)} MiB once loaded${s.rssMiB.end !== undefined ? `, ${n(s.rssMiB.end)} at its end, ${n(s.rssMiB.peak!)} at most (VmHWM)` : ''}` : '';
    out.push('', `- server, batching ${s.batching ? 'on' : 'off'}: ${s.ok ? `ready in ${n(s.readySeconds!)} s${rss}; exited with code 0, ${n(s.exit!.seconds)} s after SIGTERM` : `failed: ${firstLine(s.reason)}${rss}`}`);
  }
  for (const r of rep.runs.filter((x) => x.status !== 'ok')) out.push('', `- ${runKey(r)}: failed: ${firstLine(r.reason)}`);
  out.push('', 'Targets (issue 23):', '', ...serveTargets(rep).map((t) => `- ${t.what}: ${t.figure} — ${verdict(t)}`));
  return out.join('\n');
}

/** The adaptive-softmax benchmark (npm run bench:adaptive): one row per vocabulary size, full and adaptive side by side, then the targets. */
function adaptiveTable(rep: AdaptiveReport): string {
  const o = rep.options;
  const blas = rep.runs.find((r) => r.info)?.info;
  const out = [
    `Training: one \`fit\` call of as many steps as the warm-up steps' pace gives for ${n(o.minSeconds)} s (at least ${o.minSteps}; the steps timed are in the last column), timed by the wall clock. Generation: calls of ${o.generateTokens} tokens for ${n(o.genSeconds)} s, after a warm-up${blas ? `. ${blas.blas}, ${blas.threads} threads` : ''}${rep.commit ? `; commit ${rep.commit.hash.slice(0, 7)}${rep.commit.dirty ? ' (modified)' : ''}` : ''}.`,
    '',
    '| V | cutoffs | training tokens/s: full | adaptive | adaptive ÷ full | generation tokens/s: full | adaptive | adaptive ÷ full | peak backend MiB: full | adaptive | peak RSS MiB: full | adaptive | steps timed: full / adaptive |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const cell = (x?: number) => (x === undefined ? '—' : n(x));
  const times = (x?: number) => (x === undefined ? '—' : `${n(x)}×`);
  for (const p of rep.pairs) {
    const of = (s: string) => rep.runs.find((r) => r.vocabSize === p.vocabSize && r.softmax === s);
    const f = of('full'), a = of('adaptive'), q = p.ratios;
    const train = (r?: AdaptiveRun) => cell(r?.status === 'ok' ? r.train?.tokensPerSecond : undefined);
    const peak = (r: AdaptiveRun | undefined, k: 'backendMiB' | 'rssMiB') => cell(r?.status === 'ok' ? r.memory?.end?.[k] : undefined);
    out.push(`| ${n(p.vocabSize)} | ${p.cutoffs.map(n).join(', ')} | ${train(f)} | ${train(a)} | ${times(q.train)} | ${cell(f?.generate?.tokensPerSecond)} | ${cell(a?.generate?.tokensPerSecond)} | ${times(q.generate)} | ${peak(f, 'backendMiB')} | ${peak(a, 'backendMiB')} | ${peak(f, 'rssMiB')} | ${peak(a, 'rssMiB')} | ${f?.train?.steps ?? '—'} / ${a?.train?.steps ?? '—'} |`);
  }
  for (const r of rep.runs.filter((x) => x.status !== 'ok')) out.push('', `- V ${n(r.vocabSize)} ${r.softmax}: ${r.status === 'error' ? 'failed: ' : ''}${firstLine(r.reason)}`);
  if (rep.targets?.length) out.push('', 'Targets (issue 24):', '', ...rep.targets.map((t) => `- ${t.what}: ${t.figure} — ${verdict(t)}`));
  return out.join('\n');
}

function scalingTable(rep: BenchReport): string {
  const peers = [...new Set(rep.scaling!.map((r) => r.peer))];
  const out = ['Training tokens/s as the model or the batch doubles (zaremba-small otherwise):', ''];
  for (const axis of ['hiddenSize', 'batchSize']) {
    const rows = rep.scaling!.filter((r) => r.axis === axis);
    const values = [...new Set(rows.map((r) => r.value))];
    out.push(`| ${axis === 'hiddenSize' ? 'hidden = embedding size' : 'batch size'} | ${peers.join(' | ')} | ${peers.length > 1 ? `${peers[0]} ÷ ${peers[1]}` : ''} |`);
    out.push(`|---:|${peers.map(() => '---:|').join('')}---:|`);
    for (const v of values) {
      const cells = peers.map((p) => rows.find((r) => r.value === v && r.peer === p)!);
      const a = cells[0]?.train?.tokensPerSecond, b = cells[1]?.train?.tokensPerSecond ?? (cells[1] ? below(cells[1]) : undefined);
      const ratio = a && b ? `${cells[1]?.train?.tokensPerSecond ? '' : '> '}${n(a / b)}×` : '';
      out.push(`| ${v} | ${cells.map((c) => (c ? trainCell(c) : '—')).join(' | ')} | ${ratio} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

/** Horizontal bars of training tokens/s on a log scale, one group per configuration. */
function svg(rep: BenchReport): string {
  const runs = rep.runs.filter((r) => r.train?.tokensPerSecond || below(r));
  const peers = [...new Set(runs.map((r) => r.peer))];
  const colors = ['#1f6feb', '#2da44e', '#bf8700', '#cf222e', '#8250df', '#57606a'];
  const configs = CONFIGS.map((c) => c.name).filter((c) => runs.some((r) => r.config === c));
  const value = (r: RunResult) => r.train?.tokensPerSecond ?? below(r)!;
  const lo = Math.floor(Math.log10(Math.min(...runs.map(value)))), hi = Math.ceil(Math.log10(Math.max(...runs.map(value))));
  const left = 120, width = 560, bar = 14, gap = 10, top = 40;
  const x = (v: number) => left + ((Math.log10(v) - lo) / (hi - lo)) * width;
  const parts: string[] = [];
  let y = top;
  for (const c of configs) {
    const group = peers.map((p) => runs.find((r) => r.config === c && r.peer === p)).filter((r): r is RunResult => !!r);
    parts.push(`<text x="${left - 8}" y="${y + (group.length * bar) / 2 + 4}" text-anchor="end" font-weight="bold">${xml(c)}</text>`);
    for (const r of group) {
      const v = value(r);
      const color = colors[peers.indexOf(r.peer) % colors.length];
      parts.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(v) - left).toFixed(1)}" height="${bar - 2}" fill="${color}"${r.train ? '' : ' fill-opacity="0.35"'}/>`);
      parts.push(`<text x="${(x(v) + 4).toFixed(1)}" y="${y + bar - 4}">${xml(`${r.train ? '' : '< '}${n(v)}`)}</text>`);
      y += bar;
    }
    y += gap;
  }
  const axis: string[] = [];
  for (let e = lo; e <= hi; e++) {
    axis.push(`<line x1="${x(10 ** e)}" y1="${top - 6}" x2="${x(10 ** e)}" y2="${y}" stroke="#d0d7de"/>`);
    axis.push(`<text x="${x(10 ** e)}" y="${top - 10}" text-anchor="middle">${n(10 ** e)}</text>`);
  }
  const legend = peers.map((p, i) => `<rect x="${left + i * 130}" y="${y + 8}" width="10" height="10" fill="${colors[i % colors.length]}"/><text x="${left + i * 130 + 14}" y="${y + 17}">${xml(p)}</text>`);
  const h = y + 30;
  const title = `Training tokens/s (log scale) — ${rep.machine.cpu}, ${rep.machine.cores} cores${rep.machine.gpu ? `, ${rep.machine.gpu}` : ''}`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 90}" height="${h}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="16" font-size="13">${xml(title)}</text>
${[...axis, ...parts, ...legend].join('\n')}
</svg>
`;
}

const begin = '<!-- bench:begin (npm run bench:render) -->', end = '<!-- bench:end -->';
const adaptiveBegin = '<!-- bench:adaptive:begin (npm run bench:render) -->', adaptiveEnd = '<!-- bench:adaptive:end -->';
const quantizeBegin = '<!-- bench:quantize:begin (npm run bench:render) -->', quantizeEnd = '<!-- bench:quantize:end -->';

/** The text with what lies between its markers `from` and `to` replaced by `body`. */
function between(text: string, from: string, to: string, body: string): string {
  const i = text.indexOf(from), j = text.indexOf(to);
  if (i < 0 || j < i) throw new Error(`README.md has no ${from} ... ${to} section`);
  return `${text.slice(0, i + from.length)}\n${body}\n${text.slice(j)}`;
}

/** The README's adaptive-softmax subsection from these reports (full runs of npm run bench:adaptive), or a line saying there is none yet. */
export function renderAdaptive(readmeText: string, reports: { file: string; report: AdaptiveReport }[]): string {
  const body = reports.map(({ file, report }) => `${heading(report, file)}\n\n${adaptiveTable(report)}`).join('\n\n');
  return between(readmeText, adaptiveBegin, adaptiveEnd, body || '_No report yet: `npm run bench:adaptive` writes `bench/results/adaptive-cpu-2core.json`._');
}

/** The README with its benchmark section rendered from bench/results/*.json, and the charts. */
export function render(readmeText: string): { readme: string; charts: Record<string, string> } {
  const reports = readReports<BenchReport>('rnnlm-bench');
  if (reports.length === 0) throw new Error(`no benchmark reports in ${dir} (run: npm run bench -- --json bench/results/cpu.json)`);
  const charts: Record<string, string> = {};
  const sections: string[] = [];
  for (const { file, report } of reports) {
    const parts = [heading(report, file)];
    if (report.runs.length) {
      const chart = file.replace(/\.json$/, '.svg');
      charts[chart] = svg(report);
      parts.push(table(report), `![training tokens/s](bench/results/${chart})`);
    }
    if (report.concurrency?.length) parts.push(concurrencyTable(report.concurrency));
    sections.push(parts.join('\n\n'));
  }
  for (const { file, report } of readReports<ServeReport>('rnnlm-serve-bench')) sections.push(`${heading(report, file)}\n\n${serveTable(report)}`);
  const quantized = readReports<QuantizeReport>('rnnlm-quantize-bench').map(({ file, report }) => `${heading(report, file)}\n\n${quantizeTable(report)}`).join('\n\n');
  const text = between(renderAdaptive(readmeText, readReports<AdaptiveReport>('rnnlm-adaptive-bench')), quantizeBegin, quantizeEnd,
    quantized || '_No report yet: `npm run bench:quantize` writes `bench/results/quantize-cpu-2core.json`._');
  return { readme: between(text, begin, end, sections.join('\n\n')), charts };
}

// Run as a script (npm run bench:render), not when a test imports render().
if (typeof module !== 'undefined' && require.main === module) {
  const { readme: text, charts } = render(readFileSync(readme, 'utf8'));
  for (const [name, body] of Object.entries(charts)) writeFileSync(join(dir, name), body);
  writeFileSync(readme, text);
  console.log(`README.md: ${Object.keys(charts).length} report(s) rendered; charts in ${dir}`);
}
