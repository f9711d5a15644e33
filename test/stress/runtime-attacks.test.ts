// Attacks on the inference runtime (issue 22: continuous batching, sessions, cancellation) from
// the public API: extreme sizes, callbacks that throw, re-enter, abort or dispose, and
// inference racing training. The first group held from the start; each test of the second group
// reproduced a misbehaviour found in review (it failed before the fix; the names say what holds).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/backend/cpu';
import { LanguageModel, type Generation } from '../../lib/model';

const tiny = (o: Record<string, unknown> = {}) =>
  LanguageModel.create({ vocabSize: 100, embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed: 3, ...o });
const ids = (n: number, k = 1) => Array.from({ length: n }, (_, j) => (j * 7 * k + k) % 100);
const data = Array.from({ length: 4000 }, (_, i) => (i * 7 + (i >> 3)) % 100);
const settle = <T>(p: Promise<T>) => p.then((value) => ({ ok: true as const, value }), (error) => ({ ok: false as const, error }));
/** Resolves with 'timeout' if p has not settled after ms (a hang becomes a failure, not a stuck run). */
const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
const cpuMs = async (f: () => Promise<unknown>) => {
  const t = process.cpuUsage();
  await f();
  const d = process.cpuUsage(t);
  return (d.user + d.system) / 1000;
};

describe('holds', () => {
  test('maxBatchSize 4096 with 5,000 concurrent generations and scores: the answers of batching off', async () => {
    const [wide, one] = await Promise.all([tiny({ maxBatchSize: 4096 }), tiny({ batching: false })]);
    try {
      const prompts = Array.from({ length: 5000 }, (_, i) => ids(2 + (i % 70), i));
      const gen = (m: LanguageModel) => Promise.all(prompts.map((p, i) => m.generate({ prompt: p, maxTokens: 1 + (i % 6), seed: i, details: true })));
      const [a, b] = [await gen(wide), await gen(one)];
      expect(a.map((g) => g.ids)).toEqual(b.map((g) => g.ids));
      const [sa, sb] = [await wide.score(prompts), await one.score(prompts)];
      sa.forEach((s, i) => expect(s.logProb).toBeCloseTo(sb[i].logProb, 4));
    } finally {
      wide.dispose();
      one.dispose();
    }
  }, 60_000);

  test('a 100,000-token prompt does not hold up a short request: it finishes within a few steps, the long one after ~3,125', async () => {
    const m = await tiny();
    try {
      // The clock: a generation alongside draws one token per scheduler step.
      let steps = 0;
      const stop = new AbortController();
      const clock = m.generate({ maxTokens: 1_000_000, seed: 1, signal: stop.signal, onToken: () => void steps++ }).catch(() => {});
      while (steps === 0) await new Promise((r) => setTimeout(r, 1));
      const t0 = steps;
      let shortAt = -1, longAt = -1;
      const long = Int32Array.from({ length: 100_000 }, (_, i) => (i * 13) % 100);
      await Promise.all([
        m.predictNext(long).then(() => (longAt = steps - t0)),
        m.generate({ prompt: [1, 2, 3], maxTokens: 5, seed: 1 }).then(() => (shortAt = steps - t0)),
      ]);
      stop.abort();
      await clock;
      console.log(`short request done after ${shortAt} steps, the 100,000-token prompt after ${longAt}`);
      expect(shortAt).toBeLessThan(20);
      expect(longAt).toBeGreaterThan(100_000 / 32 - 10); // fed in chunks of 32 tokens, one per step
    } finally {
      m.dispose();
    }
  }, 60_000);

  test('onToken that throws rejects its own call only; onToken may call generate and abort its own signal', async () => {
    const m = await tiny();
    try {
      const alone: Generation[] = [];
      for (let i = 0; i < 5; i++) alone.push(await m.generate({ maxTokens: 20, seed: i, details: true }));
      const others = Array.from({ length: 5 }, (_, i) => m.generate({ maxTokens: 20, seed: i, details: true }));
      const boom = new Error('boom');
      const thrower = settle(m.generate({ maxTokens: 20, seed: 9, onToken: () => { throw boom; } }));
      expect(await thrower).toEqual({ ok: false, error: boom });
      expect((await Promise.all(others)).map((g) => g.ids)).toEqual(alone.map((g) => g.ids));
      // Re-entrancy: a generate started inside onToken runs (batched) and answers as alone.
      const inner: Promise<string>[] = [];
      await m.generate({ maxTokens: 10, seed: 1, onToken: () => void inner.push(m.generate({ maxTokens: 3, seed: 2 })) });
      const want = await m.generate({ maxTokens: 3, seed: 2 });
      expect(await Promise.all(inner)).toEqual(Array(10).fill(want));
      // Its own signal aborted inside onToken: rejects with the reason, no token after.
      const ac = new AbortController(), reason = new Error('enough');
      let seen = 0;
      const r = await settle(m.generate({ maxTokens: 50, seed: 1, signal: ac.signal, onToken: () => void (++seen === 3 && ac.abort(reason)) }));
      expect(r).toEqual({ ok: false, error: reason });
      expect(seen).toBe(3);
      expect(await m.generate({ maxTokens: 3, seed: 2 })).toBe(want);
    } finally {
      m.dispose();
    }
  });

  test('model.dispose() inside onToken or while a generateStream is iterated: calls in flight reject with ERR_DISPOSED or answer, memory comes back', async () => {
    const before = cpuBackend.memoryStats().liveBytes;
    const m = await tiny();
    const s = m.session();
    await s.append([1, 2, 3]);
    let k = 0;
    const calls: Promise<{ ok: boolean; error?: { code?: string } }>[] = [
      settle(m.generate({ maxTokens: 50, seed: 3 })), settle(s.generate({ maxTokens: 50, seed: 3, append: true })), settle(m.score([[1, 2, 3, 4, 5]])),
      settle(m.predictNext([1, 2])), settle(m.generate({ maxTokens: 50, seed: 4, onToken: () => void (++k === 3 && m.dispose()) })),
    ];
    const results = await within(Promise.all(calls), 10_000);
    expect(results).not.toBe('timeout');
    for (const r of results as Awaited<(typeof calls)[number]>[]) if (!r.ok) expect(r.error?.code).toBe('ERR_DISPOSED');
    s.dispose();
    await new Promise((r) => setTimeout(r, 10));
    expect(cpuBackend.memoryStats().liveBytes).toBe(before);

    const m2 = await tiny();
    const got: string[] = [];
    const loop = settle((async () => {
      for await (const t of m2.generateStream({ maxTokens: 1000, seed: 1 })) if (got.push(t.text) === 5) m2.dispose();
    })());
    const r = await within(loop, 10_000);
    expect(r).toMatchObject({ ok: false, error: { code: 'ERR_DISPOSED' } });
    expect(got.length).toBe(5);
    expect(cpuBackend.memoryStats().liveBytes).toBe(before);
  });

  test('fit called while 100 generations run starts after them (they answer as before it); calls made during fit wait for it', async () => {
    const m = await tiny();
    try {
      const alone: number[][] = [];
      for (let i = 0; i < 100; i++) alone.push((await m.generate({ maxTokens: 30, seed: i, details: true })).ids);
      const beforeFit = await m.predictNext([1, 2], { topK: 5 });
      const gens = Array.from({ length: 100 }, (_, i) => m.generate({ maxTokens: 30, seed: i, details: true }));
      const fit = m.fit(data, { epochs: 1, batchSize: 8, seqLength: 16, progress: false });
      await new Promise((r) => setTimeout(r, 0));
      const during = m.predictNext([1, 2], { topK: 5 });
      expect((await Promise.all(gens)).map((g) => g.ids)).toEqual(alone);
      await fit;
      const afterFit = await m.predictNext([1, 2], { topK: 5 });
      expect(afterFit).not.toEqual(beforeFit); // the fit changed the model...
      expect(await during).toEqual(afterFit); // ...and the call made during it saw only the result
      await expect(m.fit(data, { epochs: 1, progress: false }).then(() => m.fit(data, { epochs: 1, progress: false }))).resolves.toBeDefined();
      const two = await Promise.allSettled([m.fit(data, { epochs: 1, progress: false }), m.fit(data, { epochs: 1, progress: false })]);
      expect(two[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_BUSY' } });
    } finally {
      m.dispose();
    }
  }, 60_000);

  test('evaluate and beamSearch concurrent with generations give what they give alone', async () => {
    const m = await tiny();
    try {
      const valid = data.slice(0, 500);
      const ev = await m.evaluate(valid, { batchSize: 3 });
      const bs = await m.beamSearch([1, 2, 3], { beamWidth: 4, maxTokens: 8 });
      const alone: number[][] = [];
      for (let i = 0; i < 20; i++) alone.push((await m.generate({ maxTokens: 30, seed: i, details: true })).ids);
      const gens = Array.from({ length: 20 }, (_, i) => m.generate({ maxTokens: 30, seed: i, details: true }));
      const [ev2, bs2, ev3] = await Promise.all([m.evaluate(valid, { batchSize: 3 }), m.beamSearch([1, 2, 3], { beamWidth: 4, maxTokens: 8 }), m.evaluate(valid, { batchSize: 3 })]);
      expect((await Promise.all(gens)).map((g) => g.ids)).toEqual(alone);
      expect(ev2).toEqual(ev);
      expect(ev3).toEqual(ev);
      expect(bs2).toEqual(bs);
    } finally {
      m.dispose();
    }
  });

  test('inference of every kind inside onEpochEnd (a session too) leaves the training exactly as without it', async () => {
    const valid = data.slice(0, 500);
    const train = async (inside: boolean) => {
      const m = await tiny();
      try {
        const logs = await m.fit(data, {
          epochs: 3, batchSize: 4, seqLength: 16, progress: false, validation: valid,
          onEpochEnd: async (_log, model) => {
            if (!inside) return;
            const s = model.session();
            await s.append([1, 2, 3]);
            void model.generate({ maxTokens: 20, seed: 5 }); // not awaited: fit waits for it too
            await Promise.all([
              model.beamSearch([1, 2, 3], { beamWidth: 4, maxTokens: 5 }), model.evaluate(valid, { batchSize: 3 }),
              model.generate({ prompt: [4, 5], maxTokens: 40, seed: 1 }), model.score([[1, 2, 3, 4], [5, 6, 7]]),
              s.generate({ maxTokens: 5, append: true }), s.fork().predictNext(),
            ]);
            s.dispose();
          },
        });
        return logs.map((l) => [l.loss, l.valLoss]);
      } finally {
        m.dispose();
      }
    };
    expect(await train(true)).toEqual(await train(false));
  }, 60_000);

  test('logitBias with 10,000 entries on a 20,000-token vocabulary; scores spanning several decoder passes', async () => {
    const m = await LanguageModel.create({ vocabSize: 20_000, embeddingSize: 8, hiddenSize: 16, layers: 1, device: 'cpu', seed: 3 });
    try {
      const bias = new Map<number, number>(Array.from({ length: 10_000 }, (_, i) => [i * 2, i % 2 ? 3 : -3]));
      const all = await m.predictNext([1, 2, 3], { topK: 20_000 });
      const want = all.map((p) => ({ id: p.id, b: Math.log(p.probability) + (bias.get(p.id) ?? 0) })).sort((a, b) => b.b - a.b).slice(0, 5);
      expect((await m.predictNext([1, 2, 3], { topK: 5, logitBias: bias })).map((p) => p.id)).toEqual(want.map((w) => w.id));
      const alone: number[][] = [];
      for (let i = 0; i < 10; i++) alone.push((await m.generate({ prompt: [1, 2], maxTokens: 10, seed: i, logitBias: bias, details: true })).ids);
      const batched = await Promise.all(Array.from({ length: 10 }, (_, i) => m.generate({ prompt: [1, 2], maxTokens: 10, seed: i, logitBias: bias, details: true })));
      expect(batched.map((g) => g.ids)).toEqual(alone);
      // 300 texts of 20-70 tokens in one call: more scored positions per step than one decoder pass takes (4,194,304 / V).
      const texts = Array.from({ length: 300 }, (_, i) => Array.from({ length: 20 + (i % 50) }, (_, j) => (i * 7919 + j * 104_729) % 20_000));
      const together = await m.score(texts);
      for (let i = 0; i < texts.length; i += 37) expect(together[i].logProb).toBeCloseTo((await m.score(texts[i])).logProb, 4);
    } finally {
      m.dispose();
    }
  }, 60_000);

  test('score of 50,000 texts at once', async () => {
    const m = await tiny();
    try {
      const texts = Array.from({ length: 50_000 }, (_, i) => [1 + (i % 90), 2 + (i % 7), 3 + (i % 11)]);
      const got = await m.score(texts);
      expect(got).toHaveLength(50_000);
      for (let i = 0; i < 50_000; i += 4999) expect(got[i].logProb).toBeCloseTo((await m.score(texts[i])).logProb, 5);
    } finally {
      m.dispose();
    }
  }, 60_000);

  test('sessions: a fork made before the parent is disposed keeps its state; a disposed session refuses fork and calls', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      await s.append([5, 6, 7]);
      const child = s.fork(); // copies once the calls before it have ended: before dispose frees the state
      s.dispose();
      expect(await child.predictNext({ topK: 5 })).toEqual(await m.predictNext([5, 6, 7], { topK: 5 }));
      expect(() => s.fork()).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
      await expect(s.predictNext()).rejects.toMatchObject({ code: 'ERR_DISPOSED' });
      child.dispose();
    } finally {
      m.dispose();
    }
  });
});

describe('bugs found in review, each fixed (each test failed before its fix)', () => {
  test('session.score of a one-token input scores that token', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      await s.append([5, 6, 7]);
      const p = (await s.predictNext({ topK: 100 })).find((x) => x.id === 8)!.probability;
      const got = await s.score([8]);
      expect(got.tokens).toBe(1);
      expect(got.logProb).toBeCloseTo(Math.log(p), 5);
      expect((await m.session().score([8])).tokens).toBe(1); // a fresh session too
    } finally {
      m.dispose();
    }
  });

  test('generateStream: two next() calls at once both settle', async () => {
    const m = await tiny();
    try {
      const it = m.generateStream({ maxTokens: 5, seed: 1 });
      const r = await within(Promise.all([it.next(), it.next()]), 5000);
      expect(r).not.toBe('timeout');
      await it.return?.();
    } finally {
      m.dispose();
    }
  });

  test('a cancelled session append (or score/generate with append) leaves the session state as it was', async () => {
    const m = await tiny();
    try {
      const want56 = await m.predictNext([5, 6], { topK: 5 });
      const want5678 = await m.predictNext([5, 6, 7, 8], { topK: 5 });
      // The abort comes from another call's onToken, i.e. while the scheduler reads a step's
      // results: at token k it lands before, during or after the step in which the append ends.
      const seen: string[] = [];
      for (let k = 1; k <= 8; k++) {
        const s = m.session();
        await s.append([5, 6]);
        const ac = new AbortController();
        let n = 0;
        const g = m.generate({ maxTokens: 10, seed: 1, onToken: () => void (++n === k && ac.abort(new Error('late'))) });
        const a = await settle(s.append([7, 8], { signal: ac.signal }));
        await g;
        const state = await s.predictNext({ topK: 5 });
        seen.push(`k=${k}: ${a.ok ? 'resolved' : 'rejected'}, length ${s.length}`);
        expect(state, seen.join('; ')).toEqual(a.ok ? want5678 : want56);
        expect(s.length).toBe(a.ok ? 4 : 2);
        s.dispose();
      }
    } finally {
      m.dispose();
    }
  });

  test('an aborted call waiting for fit rejects at once', async () => {
    const m = await tiny();
    const stopFit = new AbortController();
    try {
      let fitDone = false;
      const fit = m.fit(data, { epochs: 10_000, batchSize: 8, seqLength: 16, progress: false, signal: stopFit.signal }).catch(() => {}).finally(() => (fitDone = true));
      const ac = new AbortController(), reason = new Error('not now');
      const call = settle(m.predictNext([1, 2], { signal: ac.signal }));
      setTimeout(() => ac.abort(reason), 50);
      const r = await within(call, 5000);
      expect(r).toEqual({ ok: false, error: reason });
      expect(fitDone).toBe(false);
      stopFit.abort();
      await fit;
    } finally {
      stopFit.abort();
      m.dispose();
    }
  }, 30_000);

  test('an aborted session call queued behind a long call on the same session rejects at once', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      const stopLong = new AbortController();
      const long = s.generate({ maxTokens: 1_000_000, seed: 1, signal: stopLong.signal }).catch(() => {});
      const ac = new AbortController(), reason = new Error('not now');
      const call = settle(s.predictNext({ signal: ac.signal }));
      setTimeout(() => ac.abort(reason), 50);
      const r = await within(call, 5000);
      stopLong.abort();
      await long;
      expect(r).toEqual({ ok: false, error: reason });
    } finally {
      m.dispose();
    }
  }, 30_000);

  test('onEpochEnd awaiting a session that has a call queued from before the callback: fit ends', async () => {
    const m = await tiny();
    const stopFit = new AbortController();
    try {
      const s = m.session();
      const fit = m.fit(data.slice(0, 2000), {
        epochs: 2, batchSize: 8, seqLength: 16, progress: false, signal: stopFit.signal,
        onEpochEnd: async () => void (await s.predictNext()),
      });
      await new Promise((r) => setTimeout(r, 5));
      const queued = s.append([1, 2]); // made during fit: waits for it
      const r = await within(fit, 15_000);
      expect(r).not.toBe('timeout');
      await queued;
    } finally {
      stopFit.abort();
      m.dispose();
    }
  }, 30_000);

  test('session.dispose() lets the calls made before it run', async () => {
    const m = await tiny();
    try {
      const s = m.session();
      const a = settle(s.append([1, 2, 3]));
      const p = settle(s.predictNext({ topK: 3 }));
      s.dispose();
      expect(await a).toEqual({ ok: true, value: undefined });
      expect(await p).toEqual({ ok: true, value: await m.predictNext([1, 2, 3], { topK: 3 }) });
    } finally {
      m.dispose();
    }
  });

  test('model.dispose() frees the state of the sessions still alive', async () => {
    const before = cpuBackend.memoryStats().liveBytes;
    const m = await tiny();
    const s = m.session();
    await s.append([1, 2, 3]);
    const f = s.fork();
    await f.predictNext();
    m.dispose(); // "frees all native memory now"
    expect(cpuBackend.memoryStats().liveBytes).toBe(before);
    s.dispose();
    f.dispose();
  });

  test('fork() of a session after model.dispose() does not crash the process with an unhandled rejection', async () => {
    const code = `
      const { LanguageModel } = require('./lib/model');
      (async () => {
        const m = await LanguageModel.create({ vocabSize: 50, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
        const s = m.session();
        await s.append([1, 2, 3]);
        m.dispose();
        try { s.fork(); } catch {}
        process.exitCode = 3;
      })();`;
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => void (err += d.toString()));
      p.on('exit', (c) => resolve({ code: c, err }));
    });
    expect(r.code, r.err).toBe(3);
  });

  test('evaluate takes a signal like every inference call', async () => {
    const m = await tiny();
    try {
      const ac = new AbortController();
      await expect(m.evaluate(data.slice(0, 100), { signal: ac.signal } as never)).resolves.toMatchObject({ loss: expect.any(Number) });
      const reason = new Error('stop');
      ac.abort(reason);
      await expect(m.evaluate(data.slice(0, 100), { signal: ac.signal } as never)).rejects.toBe(reason);
    } finally {
      m.dispose();
    }
  });

  test('generateStream validates its signal option', async () => {
    const m = await tiny();
    try {
      await expect(m.generateStream({ maxTokens: 2, signal: {} as AbortSignal }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
      await expect(m.session().generateStream({ maxTokens: 2, signal: 'x' as never }).next()).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    } finally {
      m.dispose();
    }
  });

  test('onToken throwing undefined rejects the call', async () => {
    const m = await tiny();
    try {
      const r = await settle(m.generate({ maxTokens: 10, seed: 1, onToken: () => { throw undefined; } }));
      expect(r.ok).toBe(false);
    } finally {
      m.dispose();
    }
  });

  test('one signal shared by 30,000 scored texts: no listener-leak warning, about the cost of no signal, and an abort that rejects promptly', async () => {
    const m = await tiny();
    const warnings: string[] = [];
    const onWarning = (w: Error) => void warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const texts = Array.from({ length: 30_000 }, (_, i) => [1 + (i % 90), 2 + (i % 7), 3 + (i % 11)]);
      await m.score(texts.slice(0, 1000)); // warm-up
      const plain = await cpuMs(() => m.score(texts));
      const shared = await cpuMs(() => m.score(texts, { signal: new AbortController().signal }));
      const ac = new AbortController();
      const aborted = await cpuMs(async () => {
        const p = settle(m.score(texts, { signal: ac.signal }));
        ac.abort();
        await p;
      });
      console.log(`score of 30,000 texts: ${plain.toFixed(0)} ms of CPU, ${shared.toFixed(0)} ms with a signal, ${aborted.toFixed(0)} ms to submit and abort them`);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
      expect(shared).toBeLessThan(2 * plain + 500);
      expect(aborted).toBeLessThan(plain + 500);
    } finally {
      process.off('warning', onWarning);
      m.dispose();
    }
  }, 120_000);
});
