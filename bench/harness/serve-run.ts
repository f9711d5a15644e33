/**
 * Runs the server benchmark (bench/harness/serve.ts says what it measures). One server per
 * batching mode serves every run of that mode — endpoint by endpoint, connections rising — so
 * its RSS is followed over minutes of load, as a long-lived server's would be (a server per run
 * would start each run afresh and hide a slow leak). A server that dies fails the run it was
 * serving; the next run gets a fresh server, and both lives are in the report.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULTS } from '../../lib/defaults';
import { LanguageModel } from '../../lib/model';
import { WordTokenizer } from '../../lib/tokenizers';
import { QUICK, findConfig } from './configs';
import { machine } from './run';
import {
  QUICK_SERVE_CONNECTIONS, SERVE_CONFIG, SERVE_CONNECTIONS, SERVE_ENDPOINTS, formatServe, runKey, servePlan, serveTargets, verdict,
  type Endpoint, type ServeReport, type ServeRun,
} from './serve';
import { load } from './serve-load';
import { ServerProcess, machineCpuSeconds, type ServerSpec } from './serve-server';

export interface ServeBenchOptions {
  /** The quick configuration, 2-second runs at 1 and 16 connections: a smoke run. */
  quick?: boolean;
  /** The server's --device (default cpu). */
  device?: string;
  /** Seconds per measured run (default 30; quick 2) and per warm-up (default 3; quick 0.5). */
  duration?: number;
  warmup?: number;
  connections?: number[];
  endpoints?: Endpoint[];
  /** Batching modes to run (default both, on first). */
  batching?: boolean[];
  /** Extra flags for each server's node (--cpu-prof, say). */
  serverNodeArgs?: string[];
  /** Where the report is written (rewritten after every run). */
  json?: string;
  log?: (line: string) => void;
}

/** Seconds a server may take to load (CUDA's start included), and beyond its shutdown timeout to exit after SIGTERM. */
const START_TIMEOUT = 180;
const EXIT_SLACK = 5;
/** Seconds the load generator waits for an answer (autocannon's default). */
const CLIENT_TIMEOUT = 10;

/** A checkpoint of the configuration's sizes with a word tokenizer of its vocabulary (words w0, w1, ...), weights as initialised. */
async function checkpoint(folder: string, quick: boolean) {
  const c = quick ? QUICK : findConfig(SERVE_CONFIG)!;
  const words = Array.from({ length: c.vocabSize - 4 }, (_, i) => `w${i}`);
  const tokenizer = WordTokenizer.fit(words.join(' '));
  const model = await LanguageModel.create({ tokenizer, cell: c.cell, layers: c.layers, hiddenSize: c.hiddenSize, embeddingSize: c.embeddingSize, device: 'cpu', seed: 1 });
  const path = join(folder, `${c.name}.safetensors`);
  try {
    if (model.config.vocabSize !== c.vocabSize) throw new Error(`the tokenizer has ${model.config.vocabSize} tokens, the configuration ${c.vocabSize}`);
    await model.save(path);
    const info: ServeReport['model'] = {
      config: c.name, cell: c.cell, layers: c.layers, hiddenSize: c.hiddenSize, embeddingSize: c.embeddingSize, vocabSize: c.vocabSize,
      parameters: model.parameterCount, tokenizer: 'word', weights: 'as initialised (seed 1): the time of a step does not depend on their values',
    };
    return { path, words, info };
  } finally {
    model.dispose();
  }
}

export async function runServeBench(o: ServeBenchOptions = {}): Promise<{ report: ServeReport; ok: boolean }> {
  const log = o.log ?? ((l: string) => console.log(l));
  const quick = o.quick ?? false;
  const S = DEFAULTS.serve;
  const limits = { maxConcurrent: S.maxConcurrent, maxQueue: S.maxQueue, timeout: S.timeout, shutdownTimeout: S.shutdownTimeout, maxBatchSize: DEFAULTS.load.maxBatchSize };
  const folder = mkdtempSync(join(tmpdir(), 'rnnlm-bench-serve-'));
  try {
    const model = await checkpoint(folder, quick);
    const report: ServeReport = {
      kind: 'rnnlm-serve-bench',
      date: new Date().toISOString(),
      machine: machine(),
      options: {
        quick, device: o.device ?? 'cpu', duration: o.duration ?? (quick ? 2 : 30), warmup: o.warmup ?? (quick ? 0.5 : 3),
        connections: o.connections ?? (quick ? QUICK_SERVE_CONNECTIONS : SERVE_CONNECTIONS), endpoints: o.endpoints ?? [...SERVE_ENDPOINTS],
        clientTimeout: CLIENT_TIMEOUT, limits, exitBound: limits.shutdownTimeout + EXIT_SLACK,
      },
      model: model.info,
      servers: [],
      runs: [],
    };
    const opt = report.options;
    const save = (partial: boolean) => {
      if (o.json) writeFileSync(o.json, `${JSON.stringify(partial ? { ...report, partial } : report, null, 2)}\n`);
    };
    const plan = servePlan(opt.endpoints, opt.connections, o.batching);
    log(`rnnlm bench:serve: ${model.info.config} (${model.info.parameters.toLocaleString('en-US')} parameters) on ${opt.device}, ${plan.length} runs of ${opt.duration} s (+${opt.warmup} s warm-up); ${report.machine.cpu}, ${report.machine.cores} cores`);
    const spec = (batching: boolean): ServerSpec => ({ checkpoint: model.path, batching, device: opt.device, limits, nodeArgs: o.serverNodeArgs ?? [], startTimeout: START_TIMEOUT });

    let server: ServerProcess | undefined;
    /** The server's index in report.servers. */
    let index = -1;
    const retire = async () => {
      if (server) report.servers[index] = await server.stop(opt.exitBound);
      server = undefined;
    };
    for (const [i, p] of plan.entries()) {
      const run: ServeRun = { ...p, status: 'error', server: -1, seconds: 0, answered: 0, errors: { status: {}, timeouts: 0, connection: 0, badBodies: 0, checkedBodies: 0 } };
      if (server && (!server.alive || server.life.batching !== p.batching)) await retire();
      if (!server) {
        try {
          server = await ServerProcess.start(spec(p.batching));
          report.servers.push(server.life);
        } catch (e) {
          report.servers.push((e as { life: ServeReport['servers'][number] }).life ?? { batching: p.batching, ok: false, reason: (e as Error).message });
        }
        index = report.servers.length - 1;
      }
      run.server = index;
      if (!server) {
        run.reason = `no server: ${report.servers[index].reason}`;
      } else {
        const target = { url: server.url, endpoint: p.endpoint, connections: p.connections, clientTimeout: opt.clientTimeout, words: model.words, seed: 1000 * (i + 1) };
        const from = server.seconds();
        try {
          const w = await load({ ...target, seconds: opt.warmup });
          run.warmup = { seconds: w.seconds, answered: w.answered, errors: w.errors };
          const start = server.rss(), t0 = server.seconds(), cpu0 = server.cpuSeconds(), own0 = process.cpuUsage(), all0 = machineCpuSeconds();
          const m = await load({ ...target, seconds: opt.duration, seed: target.seed + 500 });
          const end = server.rss(), t1 = server.seconds(), cpu1 = server.cpuSeconds(), own = process.cpuUsage(own0), all1 = machineCpuSeconds();
          Object.assign(run, m);
          if (!server.alive) {
            run.reason = server.death();
          } else {
            run.status = 'ok';
            run.requestsPerSecond = m.answered / m.seconds;
            if (m.tokens !== undefined) run.tokensPerSecond = m.tokens / m.seconds;
            const sampled = server.life.rssMiB!.samples.filter(([t]) => t >= from).map(([, x]) => x);
            const serverCores = (cpu1! - cpu0!) / (t1 - t0), clientCores = (own.user + own.system) / 1e6 / (t1 - t0);
            run.cpuCores = { server: round(serverCores, 2), client: round(clientCores, 2), others: round(Math.max(0, (all1 - all0) / (t1 - t0) - serverCores - clientCores), 2) };
            run.rssMiB = { start: round(start!), end: round(end!), peak: round(Math.max(start!, end!, ...sampled)), window: [round(t0), round(t1)] };
          }
        } catch (e) {
          run.reason = server.alive ? `the load generator failed: ${(e as Error).stack ?? e}` : server.death();
        }
      }
      report.runs.push(run);
      save(true);
      log(formatServe([run]).split('\n')[1]);
    }
    await retire();
    report.targets = serveTargets(report);
    save(false);
    log('');
    log(formatServe(report.runs));
    for (const s of report.servers) {
      log(`server, batching ${s.batching ? 'on' : 'off'}: ${s.ok ? `ready in ${s.readySeconds?.toFixed(1)} s; exited with code 0, ${s.exit!.seconds} s after SIGTERM` : `FAILED: ${s.reason}`}`);
    }
    for (const t of report.targets) log(`target — ${t.what}: ${t.figure} (${verdict(t)})`);
    const ok = report.runs.every((r) => r.status === 'ok') && report.servers.every((s) => s.ok);
    if (!ok) log(`failed: ${report.runs.filter((r) => r.status !== 'ok').map(runKey).join(', ') || 'a server did not stop cleanly'}`);
    return { report, ok };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;
