// A child process for test/stress/process-lifecycle.test.ts: ends in a given way with models alive,
// busy, or in a worker thread. argv: SCENARIO DELAY_MS DIR. It prints "busy" when the work
// the scenario interrupts has started; the parent checks its exit code, signal and duration.
// SCENARIO is WHAT:KIND, KIND the work (busy()); 'batch' is many concurrent inference calls
// (generations, a stream, sessions) sharing the batching scheduler's steps.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Worker, isMainThread, parentPort, threadId, workerData } from 'node:worker_threads';
import { tensor } from '../../../lib/backend/types';
import { cpuBackend } from '../../../lib/backend/cpu';
import { LanguageModel } from '../../../lib/model';
import { CharTokenizer } from '../../../lib/tokenizers';

const text = 'the quick brown fox jumps over the lazy dog. '.repeat(200);
const tokenizer = CharTokenizer.fit(text);
const small = (seed = 1) => LanguageModel.create({ tokenizer, embeddingSize: 32, hiddenSize: 64, layers: 2, device: 'cpu', seed });
// Large enough that one step takes a while (OpenBLAS threads busy), small enough to start fast.
const large = () => LanguageModel.create({ tokenizer, embeddingSize: 256, hiddenSize: 512, layers: 2, device: 'cpu' });
const keep: unknown[] = [];
const threads = () => readdirSync('/proc/self/task').length;
const say = (line: string) => (isMainThread ? console.log(line) : parentPort!.postMessage(line));

/** Starts long work of the given kind on a model (never awaited to its end). */
function busy(m: LanguageModel, kind: string, dir: string): Promise<unknown> {
  if (kind === 'fit') return m.fit(text, { epochs: 1000, batchSize: 16, seqLength: 64, progress: false });
  if (kind === 'generate') return m.generate({ prompt: 'the', maxTokens: 1_000_000, seed: 1, stopAtEos: false });
  if (kind === 'batch') {
    const [a, b] = [m.session(), m.session()];
    keep.push(a, b);
    const forever = { maxTokens: 1_000_000, stopAtEos: false };
    return Promise.all([
      ...Array.from({ length: 6 }, (_, i) => m.generate({ prompt: 'the', seed: i, ...forever })),
      a.append(text.slice(0, 300)).then(() => a.generate({ ...forever, append: true })),
      b.append('the lazy').then(() => b.fork().generate(forever)),
      b.score(text),
      (async () => {
        for await (const t of m.generateStream(forever)) void t;
      })(),
    ]);
  }
  return (async () => {
    for (;;) await m.save(join(dir, 'm.safetensors'));
  })();
}

async function scenario(name: string, delay: number, dir: string): Promise<void> {
  const [what, kind] = name.split(':');
  switch (what) {
    case 'two-models': // a natural end with two models alive; the exit code set survives
      keep.push(await small(1), await small(2));
      process.exitCode = 3;
      return;
    case 'created-loaded': {
      const a = await small(1);
      await a.save(join(dir, 'a.safetensors'));
      keep.push(a, await LanguageModel.load(join(dir, 'a.safetensors'), { device: 'cpu' }));
      process.exitCode = 3;
      return;
    }
    case 'failed-creates': { // ERR_OUT_OF_MEMORY twice; no thread left behind
      (await small()).dispose(); // the addon and OpenBLAS's threads loaded
      const before = threads();
      for (let i = 0; i < 2; i++) {
        const e = await LanguageModel.create({ vocabSize: 1000, embeddingSize: 1 << 14, hiddenSize: 1 << 14, layers: 16, device: 'cpu' }).catch((err) => err);
        if (e?.code !== 'ERR_OUT_OF_MEMORY') throw new Error(`expected ERR_OUT_OF_MEMORY, got ${e}`);
      }
      if (threads() !== before) throw new Error(`threads: ${before} before, ${threads()} after two failed creates`);
      process.exitCode = 3;
      return;
    }
    case 'int8': { // int8 models (quantize's, and one loaded from its int8 file) alive at a natural end; int8:exit, process.exit() while they compute
      const f = await (kind === 'exit' ? large() : small());
      const q = await f.quantize('int8');
      const path = join(dir, `int8-${process.pid}-${threadId}.safetensors`);
      await q.save(path);
      keep.push(f, q, await LanguageModel.load(path, { device: 'cpu' }));
      if (kind !== 'exit') return void (process.exitCode = 3);
      busy(q, 'batch', dir).catch(() => {}); // a long score's products are shared with the int8 GEMM's helper thread
      say('busy');
      setTimeout(() => process.exit(3), delay);
      return;
    }
    case 'exit': { // process.exit() (on the main thread or in a worker) while work runs
      const m = await large();
      keep.push(m);
      busy(m, kind, dir).catch(() => {});
      say('busy');
      setTimeout(() => process.exit(3), delay);
      return;
    }
    case 'pending': { // a natural end with calls in flight: the process (or worker) lives until they are answered
      const m = await small();
      const s = m.session();
      keep.push(m, s);
      const calls = Promise.all([
        m.generate({ prompt: 'the', maxTokens: 2000, seed: 1, stopAtEos: false }),
        s.append(text.slice(0, 500)).then(() => s.generate({ maxTokens: 300, stopAtEos: false, append: true })),
        m.score(text),
        m.predictNext(text),
      ]);
      calls.then(([g, sg]) => say(`answered ${g.length} ${sg.length} ${s.length}`));
      say('busy');
      return;
    }
    case 'wait': // work runs until the process gets a signal (the default action ends it)
    case 'graceful': { // on SIGTERM the model is disposed: its calls reject and the process ends by itself
      const m = await large();
      keep.push(m);
      busy(m, kind, dir).catch(() => {});
      if (what === 'graceful') {
        process.once('SIGTERM', () => {
          m.dispose();
          process.exitCode = 3;
        });
      }
      say('busy');
      return;
    }
    case 'run': { // (in a worker) work runs until the worker is terminated; small steps, many reads
      const m = await small();
      keep.push(m);
      busy(m, kind, dir).catch(() => {});
      say('busy');
      return;
    }
    case 'throw': { // an uncaught exception while work runs
      const m = await large();
      keep.push(m);
      busy(m, kind, dir).catch(() => {});
      say('busy');
      setTimeout(() => {
        throw new Error('uncaught on purpose');
      }, delay);
      return;
    }
    case 'alloc-loop': { // (in a worker) allocations back to back until the worker is terminated
      const s = cpuBackend.createStream();
      say('busy');
      setTimeout(() => {
        for (;;) s.alloc('f32', 4).free();
      }, 0);
      return;
    }
    case 'idle-two': // (in a worker) two models alive; the worker then ends, is ended, or exits
      keep.push(await small(1), await small(2));
      say('busy');
      return;
    case 'dispose-in-getter': { // a tensor whose buffer getter disposes the stream
      const s = cpuBackend.createStream();
      const buf = s.alloc('f32', 4);
      const arg = { get buffer() { s.dispose(); return buf; }, offset: 0, shape: [4] };
      try {
        s.fill(arg as unknown as ReturnType<typeof tensor>, 1);
        throw new Error('fill after dispose did not throw');
      } catch (e) {
        if ((e as { code?: string }).code !== 'ERR_DISPOSED') throw e;
      }
      process.exitCode = 3;
      return;
    }
  }
  throw new Error(`unknown scenario ${name}`);
}

async function main() {
  const [name, delayArg, dir, how] = isMainThread ? process.argv.slice(2) : (workerData as string[]);
  const delay = Number(delayArg);
  if (isMainThread && name.startsWith('worker/')) {
    // worker/SCENARIO/HOW: the scenario runs in a worker thread, which HOW ends: 'end' (it
    // returns), 'terminate' (worker.terminate() `delay` ms after "busy"), or by itself.
    const [, inner, end] = name.split('/');
    // tsx's CommonJS hooks, registered inside the worker (execArgv's --import does not reach it).
    const w = new Worker(`require('tsx/cjs'); require(${JSON.stringify(__filename)});`, { eval: true, workerData: [inner, delayArg, dir, end] });
    w.on('message', (line: string) => {
      console.log(line);
      if (line === 'busy' && end === 'terminate') setTimeout(() => void w.terminate(), delay);
    });
    w.on('error', (e) => console.log(`worker error: ${e.message}`));
    w.on('exit', (code) => {
      console.log(`worker exit ${code}`);
      process.exitCode = 3;
    });
    return;
  }
  await scenario(name, delay, dir);
  if (!isMainThread && how === 'exit') process.exit(5);
  if (!isMainThread && how === 'terminate') setInterval(() => {}, 1000); // alive until terminated
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
