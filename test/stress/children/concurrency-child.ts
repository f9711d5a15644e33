// A child process for test/stress/concurrency.test.ts (run with --expose-gc): rounds of CALLS
// concurrent inference calls on one tiny model, about 30 % of them cancelled at a random moment.
// Every answer is checked against the same call made alone before the rounds; after each round
// the process prints one JSON line: the round's verdicts, then rss, heapUsed and the CPU
// backend's liveBytes after garbage collection. argv: ROUNDS CALLS SEED.
import { cpuBackend } from '../../../lib/backend/cpu';
import { LanguageModel, type Generation, type Prediction } from '../../../lib/model';
import { CharTokenizer } from '../../../lib/tokenizers';
import { Random } from '../../../lib/util/random';

const [rounds, calls, seed] = process.argv.slice(2).map(Number);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

// Printable ASCII: 95 characters and the 4 specials, 99 tokens.
const alphabet = Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('');
const tokenizer = CharTokenizer.fit(alphabet);
const rng = new Random(seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rng.next() * xs.length)];
const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
const text = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rng.next() * alphabet.length)]).join('');

// Contexts and prompts of 1 to 70 characters: prompts longer than one prefill chunk (32) too.
const contexts = Array.from({ length: 40 }, (_, i) => text(i < 8 ? 33 + 5 * i : int(1, 40)));
const seeds = Array.from({ length: 40 }, (_, i) => 1000 + i);
const MAX_TOKENS = 8;

interface Refs {
  /** Every token's probability after each context ('' included: the zero state). */
  dist: Map<string, Float64Array>;
  score: Map<string, number>;
  gen: Map<string, Generation>;
}

type Verdict = { kind: string; outcome: 'resolved' | 'rejected'; cancelled: boolean; error?: string };

async function main() {
  const m = await LanguageModel.create({ tokenizer, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed: 7 });
  const V = tokenizer.vocabSize;
  // The answers of the calls alone, one at a time.
  const refs: Refs = { dist: new Map(), score: new Map(), gen: new Map() };
  for (const c of ['', ...contexts]) {
    const d = new Float64Array(V);
    for (const p of await m.predictNext(c, { topK: V })) d[p.id] = p.probability;
    refs.dist.set(c, d);
  }
  for (const c of contexts) if (c.length >= 2) refs.score.set(c, (await m.score(c)).logProb);
  for (const c of ['', ...contexts.slice(0, 10)]) {
    for (const s of seeds) refs.gen.set(`${c}|${s}`, await m.generate({ prompt: c, maxTokens: MAX_TOKENS, seed: s, details: true }));
  }

  const fail = (what: string): never => {
    throw new Error(what);
  };
  const close = (a: number, b: number, tol: number) => Math.abs(a - b) <= tol;
  /** predictNext's answer is the reference's top k: the same probabilities, none left out that ranks above one given. */
  const checkTop = (got: Prediction[], ctx: string, k: number) => {
    const ref = refs.dist.get(ctx)!;
    if (got.length !== k) fail(`predictNext(${JSON.stringify(ctx)}): ${got.length} predictions, not ${k}`);
    for (const p of got) {
      if (p.token !== tokenizer.tokenOf(p.id)) fail(`predictNext: token ${JSON.stringify(p.token)} is not id ${p.id}'s`);
      if (!close(p.probability, ref[p.id], 1e-5)) fail(`predictNext(${JSON.stringify(ctx)}): p(${p.id}) = ${p.probability}, alone ${ref[p.id]}`);
    }
    const lowest = Math.min(...got.map((p) => ref[p.id]));
    const given = new Set(got.map((p) => p.id));
    for (let id = 0; id < V; id++) if (!given.has(id) && ref[id] > lowest + 1e-5) fail(`predictNext(${JSON.stringify(ctx)}): id ${id} left out`);
  };
  /** A generation with maxTokens n is the first n tokens of the reference's (same seed). */
  const expectedGen = (ctx: string, s: number, n: number) => {
    const ref = refs.gen.get(`${ctx}|${s}`)!;
    const ids = ref.ids.slice(0, n);
    return { ids, text: tokenizer.decode(ids), finishReason: ids.length === n ? 'length' : ref.finishReason, logProbs: ref.logProbs.slice(0, n) };
  };
  const checkGen = (got: Generation, ctx: string, s: number, n: number) => {
    const want = expectedGen(ctx, s, n);
    const where = `generate(${JSON.stringify(ctx)}, seed ${s}, maxTokens ${n})`;
    if (got.ids.join() !== want.ids.join()) fail(`${where}: ids ${got.ids}, alone ${want.ids}`);
    if (got.text !== want.text || got.finishReason !== want.finishReason) fail(`${where}: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    got.logProbs.forEach((lp, i) => close(lp, want.logProbs[i], 1e-5) || fail(`${where}: logProbs ${got.logProbs}, alone ${want.logProbs}`));
  };

  /** One call of a random kind; `signal` (when cancelled) is aborted at a random moment. */
  function call(i: number): Promise<Verdict> {
    const cancelled = rng.next() < 0.3;
    const moment = cancelled ? pick(['before', 'sync', 'microtask', 'timer', 'timer', 'token'] as const) : 'never';
    const reason = { cancelled: i };
    const ac = new AbortController();
    const abort = () => ac.abort(reason);
    const signal = cancelled ? ac.signal : undefined;
    if (moment === 'before') abort();
    // 'token': aborted when the call's atToken-th token arrives (if it gets that far).
    const atToken = int(1, 3);
    let tokens = 0;
    const onToken = () => void (++tokens === atToken && moment === 'token' && abort());
    const ctx = pick(contexts), s = pick(seeds), n = int(1, MAX_TOKENS);
    const genCtx = pick(['', ...contexts.slice(0, 10)]);
    const r = rng.next();
    let kind: string, work: Promise<void>;
    if (r < 0.25) {
      kind = 'generate';
      work = m.generate({ prompt: genCtx, maxTokens: n, seed: s, details: true, signal, onToken })
        .then((g) => checkGen(g, genCtx, s, n));
    } else if (r < 0.3) {
      kind = 'generate (text)';
      work = m.generate({ prompt: genCtx, maxTokens: n, seed: s, signal, onToken }).then((t) => void (t === expectedGen(genCtx, s, n).text || fail(`generate text ${JSON.stringify(t)}`)));
    } else if (r < 0.55) {
      kind = 'predictNext';
      const k = int(1, 8);
      work = m.predictNext(ctx, { topK: k, signal }).then((p) => checkTop(p, ctx, k));
    } else if (r < 0.7) {
      kind = 'score';
      const texts = [ctx, pick(contexts), pick(contexts)].filter((c) => c.length >= 2);
      const many = rng.next() < 0.3;
      work = (many ? m.score(texts, { signal }) : m.score(texts[0], { signal }).then((x) => [x])).then((got) => {
        got.forEach((g, j) => {
          const want = refs.score.get(texts[j])!;
          if (g.tokens !== texts[j].length - 1 || !close(g.logProb, want, 1e-5 * Math.abs(want) + 1e-5)) fail(`score(${JSON.stringify(texts[j])}): ${JSON.stringify(g)}, alone ${want}`);
        });
      });
    } else if (r < 0.85) {
      kind = 'session';
      const session = m.session();
      const fork = rng.next() < 0.3;
      const k = int(1, 5);
      // In call order: the append, then predictNext (and a fork's) from what the append left.
      let appended = false;
      const a = session.append(ctx, { signal }).then(() => void (appended = true));
      const p = session.predictNext({ topK: k, signal });
      const child = fork ? session.fork() : undefined;
      const q = child?.predictNext({ topK: k });
      work = Promise.allSettled([a, p, q]).then(([ra, rp, rq]) => {
        const state = appended ? ctx : '';
        if (rq.status === 'rejected') fail(`a fork's predictNext (no signal) failed: ${rq.reason}`);
        else if (rq.value) checkTop(rq.value, state, k);
        if (rp.status === 'fulfilled') checkTop(rp.value, state, k);
        // A cancelled append or predictNext rejects (the verdict checks the reason).
        for (const x of [ra, rp]) if (x.status === 'rejected') throw x.reason;
      }).finally(() => {
        session.dispose();
        child?.dispose();
      });
    } else {
      kind = 'generateStream';
      const breakAt = rng.next() < 0.5 ? int(1, n) : Infinity;
      work = (async () => {
        const ids: number[] = [];
        let out = '';
        for await (const t of m.generateStream({ prompt: genCtx, maxTokens: n, seed: s, signal })) {
          ids.push(t.id);
          out += t.text;
          onToken();
          if (ids.length >= breakAt) break;
        }
        const want = expectedGen(genCtx, s, Math.min(n, breakAt));
        if (ids.join() !== want.ids.join() || out !== want.text) fail(`generateStream: ${ids} ${JSON.stringify(out)}, alone ${want.ids}`);
      })();
    }
    if (moment === 'sync') abort();
    else if (moment === 'microtask') queueMicrotask(abort);
    // 'token' aborts from inside generate's and generateStream's loops; the other kinds have no tokens.
    else if (moment === 'timer' || (moment === 'token' && !kind.startsWith('generate'))) setTimeout(abort, int(0, 5));
    return work.then(
      () => ({ kind, outcome: 'resolved' as const, cancelled, ...(moment === 'before' ? { error: 'resolved though aborted before the call' } : {}) }),
      (e) => ({ kind, outcome: 'rejected' as const, cancelled, ...(cancelled && e === reason ? {} : { error: String(e?.stack ?? e).slice(0, 500) }) }),
    );
  }

  const settleMemory = async () => {
    await m.predictNext('x'); // every op queued before this one (frees included) has run
    for (let i = 0; i < 4; i++) {
      gc!();
      await new Promise((r) => setImmediate(r));
    }
    const mu = process.memoryUsage();
    return { rss: mu.rss, heapUsed: mu.heapUsed, liveBytes: cpuBackend.memoryStats().liveBytes };
  };

  // The runtime's working memory grows to its bounds (maxBatchSize rows, prefill chunks of 32
  // tokens) and is kept; reach them first, so that what a round leaves behind is a leak. Each
  // row group (decoding, feeding) once has all 64 rows, and once re-lays out 63 survivors around a newcomer.
  const long = text(200);
  await Promise.all([
    m.predictNext(text(40)), // done feeding one chunk before the others: its row leaves, a queued one joins
    ...Array.from({ length: 63 + 8 }, () => m.predictNext(long)),
  ]);
  await Promise.all([
    m.generate({ maxTokens: 1, seed: 1 }),
    ...Array.from({ length: 63 + 8 }, (_, i) => m.generate({ maxTokens: 20, seed: i, stopAtEos: false })),
  ]);

  for (let round = 0; round < rounds; round++) {
    const t0 = performance.now();
    const verdicts = await Promise.all(Array.from({ length: calls }, (_, i) => call(i)));
    const ms = performance.now() - t0;
    // Still usable: a plain call answers as before the round.
    checkTop(await m.predictNext(contexts[0], { topK: 5 }), contexts[0], 5);
    const errors = verdicts.filter((v) => v.error).map((v) => `${v.kind}${v.cancelled ? ' (cancelled)' : ''}: ${v.error}`);
    const count = (f: (v: Verdict) => boolean) => verdicts.filter(f).length;
    console.log(JSON.stringify({
      round, ms: Math.round(ms), calls,
      cancelled: count((v) => v.cancelled),
      cancelledRejected: count((v) => v.cancelled && v.outcome === 'rejected'),
      cancelledResolved: count((v) => v.cancelled && v.outcome === 'resolved'),
      kinds: Object.fromEntries([...new Set(verdicts.map((v) => v.kind))].map((k) => [k, count((v) => v.kind === k)])),
      errors: errors.length, firstErrors: errors.slice(0, 5),
      ...(await settleMemory()),
    }));
  }
  m.dispose();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
