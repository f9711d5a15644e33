// Cancellation (AbortSignal on every inference call) and who may use a model when: inference
// waits for fit, runs inside fit's onEpochEnd, a second fit is refused, dispose ends everything.
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/backend/cpu';
import { LanguageModel, type Generation, type Prediction, type Score, type Session } from '../../lib/model';
import {
  OTHER, TEXT, aloneTwin, expectSameGeneration, expectSamePredictions, expectSameScore, failure, ids, rejectsWith,
  rowsSeen, tiny, trained, within, words,
} from './runtime-fixtures';

/** A context long enough (1,500 tokens: 47 chunks of 32) to be fed over many steps. */
const LONG = Array.from({ length: 1500 }, (_, i) => OTHER[i % OTHER.length]);

describe('cancellation', () => {
  test('an already-aborted signal: every call rejects with its very reason (DOMException AbortError by default)', async () => {
    const m = await trained();
    try {
      const reason = new Error('mine');
      const ac = new AbortController();
      ac.abort(reason);
      const signal = ac.signal;
      const s = m.session();
      await s.append(words(3));
      const calls: [string, () => Promise<unknown>][] = [
        ['predictNext', () => m.predictNext(words(3), { signal })],
        ['generate', () => m.generate({ prompt: words(3), signal })],
        ['generateStream', () => m.generateStream({ prompt: words(3), signal }).next()],
        ['score', () => m.score(words(5), { signal })],
        ['score of many', () => m.score([words(5), words(4)], { signal })],
        ['beamSearch', () => m.beamSearch(words(3), { signal })],
        ['session.append', () => s.append(words(2), { signal })],
        ['session.predictNext', () => s.predictNext({ signal })],
        ['session.generate', () => s.generate({ signal, append: true })],
        ['session.generateStream', () => s.generateStream({ signal }).next()],
        ['session.score', () => s.score(words(2), { signal, append: true })],
      ];
      for (const [what, call] of calls) expect(await failure(call()), what).toBe(reason);
      const plain = new AbortController();
      plain.abort();
      const e = await failure(m.predictNext(words(3), { signal: plain.signal }));
      expect(e).toBeInstanceOf(DOMException);
      expect((e as DOMException).name).toBe('AbortError');
      // Nothing was appended; the model answers as before.
      expect(s.length).toBe(3);
      expectSamePredictions(await s.predictNext(), await m.predictNext(words(3)));
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('evaluate takes a signal: already aborted, or aborted while it runs, it rejects with the reason', async () => {
    const m = await trained();
    try {
      const reason = new Error('mine');
      const ac = new AbortController();
      ac.abort(reason);
      expect(await failure(m.evaluate(words(50), { signal: ac.signal } as object))).toBe(reason);
      const later = new AbortController();
      const long = Array.from({ length: 200 }, () => TEXT).join(' '); // ~0.5 M tokens
      const p = failure(m.evaluate(long, { batchSize: 1, seqLength: 35, signal: later.signal } as object));
      await m.generate({ prompt: words(3), maxTokens: 3 }); // while it runs
      later.abort(reason);
      expect(await p).toBe(reason);
      expect((await m.evaluate(words(50))).tokens).toBe(49);
    } finally {
      m.dispose();
    }
  });

  test('abort during generation: that call rejects with the reason, the concurrent ones return exactly what they return alone', async () => {
    const m = await trained({ cell: 'gru' });
    const alone = await aloneTwin(m);
    try {
      type Out = Generation | Prediction[] | Score;
      const others: ((x: LanguageModel) => Promise<Out>)[] = [
        (x) => x.generate({ prompt: words(3), seed: 1, maxTokens: 20, stopAtEos: false, details: true }),
        (x) => x.generate({ prompt: words(50, 5), seed: 2, maxTokens: 8, details: true }),
        (x) => x.generate({ seed: 3, maxTokens: 30, temperature: 0.5, details: true, logitBias: { '.': 1 } }),
        (x) => x.predictNext(words(70, 9), { topK: 7 }),
        (x) => x.score(words(90, 11), { tokenLogProbs: true }),
      ];
      const reason = new Error('mine');
      const ac = new AbortController();
      let produced = 0;
      const victim = failure(m.generate({
        prompt: words(40, 20), seed: 9, maxTokens: 100, stopAtEos: false, signal: ac.signal,
        onToken: () => ++produced === 5 && ac.abort(reason),
      }));
      const got = await Promise.all(others.map((r) => r(m)));
      expect(await victim).toBe(reason);
      expect(produced).toBe(5);
      for (let i = 0; i < others.length; i++) {
        const want = await others[i](alone), g = got[i];
        if (Array.isArray(want)) expectSamePredictions(g as Prediction[], want, `call ${i}`);
        else if ('ids' in want) expectSameGeneration(g as Generation, want, `call ${i}`);
        else expectSameScore(g as Score, want, `call ${i}`);
      }
      // No row is left behind: a call alone now steps one row, and one row is all a batching-off model has.
      const rows = rowsSeen(m);
      await m.generate({ prompt: words(3), maxTokens: 3 });
      expect(rows.max).toBe(1);
      const ac2 = new AbortController();
      let k = 0;
      const p = alone.generate({ prompt: words(3), maxTokens: 100, stopAtEos: false, signal: ac2.signal, onToken: () => ++k === 3 && ac2.abort(reason) });
      expect(await failure(p)).toBe(reason);
      expect(await within(20_000, alone.generate({ prompt: words(3), maxTokens: 3, stopAtEos: false }), 'the next call')).toBeTypeOf('string');
      // A generateStream aborted by its own signal mid-loop throws the reason out of the loop.
      const st = new AbortController();
      let n = 0;
      const loop = (async () => {
        for await (const _ of m.generateStream({ prompt: words(3), maxTokens: 5000, stopAtEos: false, signal: st.signal })) if (++n === 4) st.abort(reason);
      })();
      expect(await failure(loop)).toBe(reason);
      expect(n).toBeLessThan(5000);
    } finally {
      m.dispose();
      alone.dispose();
    }
  });

  test('abort while a long context is fed: predictNext, score and session.append reject with their reasons; the session keeps its state', async () => {
    const m = await trained();
    try {
      const s = m.session();
      await s.append(words(10));
      const reasons = [new Error('predictNext'), new Error('score'), new Error('append')];
      const acs = reasons.map(() => new AbortController());
      const calls = [
        m.predictNext(LONG, { signal: acs[0].signal }),
        m.score(LONG, { signal: acs[1].signal }),
        s.append(LONG, { signal: acs[2].signal }),
      ].map((p) => failure(p));
      // A short generation beside them: after its 3rd token the long feeds are a few chunks in.
      let n = 0;
      await m.generate({ prompt: words(2), maxTokens: 6, stopAtEos: false, seed: 1, onToken: () => void (++n === 3 && acs.forEach((ac, i) => ac.abort(reasons[i]))) });
      for (let i = 0; i < calls.length; i++) expect(await calls[i]).toBe(reasons[i]);
      expect(s.length).toBe(10);
      expectSamePredictions(await s.predictNext(), await m.predictNext(words(10)));
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  test('abort during beamSearch rejects with the reason; the model answers after', async () => {
    const m = await trained();
    try {
      const reason = new Error('mine');
      const ac = new AbortController();
      const p = failure(m.beamSearch(words(3), { beamWidth: 4, maxTokens: 100_000, signal: ac.signal, ban: ['<eos>'] }));
      await m.generate({ prompt: words(3), maxTokens: 3 }); // while the beams grow
      ac.abort(reason);
      expect(await p).toBe(reason);
      expect(await m.beamSearch(words(3), { beamWidth: 2, maxTokens: 3 })).toHaveLength(2);
    } finally {
      m.dispose();
    }
  });
});

describe('access', () => {
  const fitOptions = { epochs: 2, progress: false, batchSize: 8, seqLength: 16 } as const;

  test('fit waits for the inference in flight; inference called during fit runs when fit pauses for onEpochEnd, with that epoch\'s weights', async () => {
    const m = await tiny();
    const snapshot = join(tmpdir(), `rnnlm-epoch1-${process.pid}.safetensors`);
    try {
      const order: string[] = [];
      const log = <T>(what: string) => (v: T) => (order.push(what), v);
      const before = m.generate({ prompt: words(40), maxTokens: 20, seed: 1 }).then(log('generate started before fit'));
      const fit = m.fit(TEXT, {
        ...fitOptions,
        onEpochEnd: async (l, model) => {
          order.push(`epoch ${l.epoch}`);
          // The weights the calls made during epoch 1 see (save runs at once inside the callback).
          if (l.epoch === 1) await model.save(snapshot);
        },
      }).then(log('fit'));
      const s = m.session();
      const during = [
        m.predictNext(words(3), { topK: 8 }).then(log('predictNext')),
        m.generate({ prompt: words(3), maxTokens: 5, seed: 2 }).then(log('generate')),
        m.score(words(20)).then(log('score')),
        m.evaluate(words(20)).then(log('evaluate')),
        m.beamSearch(words(3), { maxTokens: 3 }).then(log('beamSearch')),
        s.append(words(4)).then(log('session.append')),
      ];
      await within(30_000, Promise.all([before, fit, ...during]), 'fit and the calls around it');
      // They ran in the pause after epoch 1, and fit waited for them before epoch 2.
      expect(order.slice(0, 2)).toEqual(['generate started before fit', 'epoch 1']);
      expect(order.slice(2, 8).sort()).toEqual(['beamSearch', 'evaluate', 'generate', 'predictNext', 'score', 'session.append']);
      expect(order.slice(8)).toEqual(['epoch 2', 'fit']);
      // Their answers are those of the weights after epoch 1.
      const epoch1 = await LanguageModel.load(snapshot, { device: 'cpu' });
      try {
        expectSamePredictions((await during[0]) as Prediction[], await epoch1.predictNext(words(3), { topK: 8 }));
        expect(await during[1]).toBe(await epoch1.generate({ prompt: words(3), maxTokens: 5, seed: 2 }));
        expect(s.length).toBe(4);
      } finally {
        epoch1.dispose();
      }
      s.dispose();
    } finally {
      m.dispose();
      rmSync(snapshot, { force: true });
    }
  });

  test('without onEpochEnd, inference called during fit runs after fit, with the trained weights', async () => {
    const m = await tiny();
    try {
      const order: string[] = [];
      const fit = m.fit(TEXT, fitOptions).then(() => order.push('fit'));
      const during = m.predictNext(words(3), { topK: 8 }).then((p) => (order.push('predictNext'), p));
      await within(30_000, Promise.all([fit, during]), 'fit and predictNext');
      expect(order).toEqual(['fit', 'predictNext']);
      expectSamePredictions(await during, await m.predictNext(words(3), { topK: 8 }));
    } finally {
      m.dispose();
    }
  });

  test('inside onEpochEnd inference runs at once (awaited or not) and fit waits for it; a second fit is refused with ERR_BUSY', async () => {
    const m = await tiny();
    try {
      const order: string[] = [];
      const samples: string[] = [];
      const fit = m.fit(TEXT, {
        ...fitOptions,
        onEpochEnd: async (log, model) => {
          order.push(`epoch ${log.epoch}`);
          samples.push(await model.generate({ prompt: words(3), maxTokens: 5, seed: 1 }));
          order.push(`awaited generate ${log.epoch}`);
          void model.predictNext(LONG).then(() => order.push(`predictNext ${log.epoch}`));
          void model.session().append(LONG).then(() => order.push(`session.append ${log.epoch}`));
          void model.evaluate(words(100)).then(() => order.push(`evaluate ${log.epoch}`));
        },
      }).then(() => order.push('fit'));
      await rejectsWith(m.fit(TEXT, fitOptions), 'ERR_BUSY', /already training/);
      await within(30_000, fit, 'fit with inference in onEpochEnd');
      const epoch = (k: number) => [`epoch ${k}`, `awaited generate ${k}`];
      const started = (k: number) => [`evaluate ${k}`, `predictNext ${k}`, `session.append ${k}`];
      expect(order.slice(0, 2)).toEqual(epoch(1));
      expect(order.slice(2, 5).sort()).toEqual(started(1));
      expect(order.slice(5, 7)).toEqual(epoch(2));
      expect(order.slice(7, 10).sort()).toEqual(started(2));
      expect(order.slice(10)).toEqual(['fit']);
      expect(samples).toHaveLength(2);
      // The model trains again once the first fit has ended.
      expect(await m.fit(TEXT, { ...fitOptions, epochs: 1 })).toHaveLength(1);
    } finally {
      m.dispose();
    }
  });

  test('concurrent evaluate, beamSearch, save and batched calls: each answers what it answers alone', async () => {
    const m = await trained();
    try {
      const calls = [
        () => m.evaluate(words(300)),
        () => m.beamSearch(words(5), { beamWidth: 3, maxTokens: 6 }),
        () => m.evaluate(words(120, 40), { batchSize: 3 }),
        () => m.beamSearch(LONG.slice(0, 400), { beamWidth: 2, maxTokens: 4 }),
        () => m.save(join(tmpdir(), `rnnlm-runtime-${process.pid}.safetensors`)),
        () => m.generate({ prompt: words(50), seed: 3, maxTokens: 10, details: true }),
        () => m.score(words(60, 7), { tokenLogProbs: true }),
      ];
      const together = await Promise.all(calls.map((c) => c()));
      const alone: unknown[] = [];
      for (const c of calls) alone.push(await c());
      // evaluate and beamSearch take turns on the network: the very same numbers.
      expect(together.slice(0, 5)).toEqual(alone.slice(0, 5));
      expectSameGeneration(together[5] as Generation, alone[5] as Generation);
      expectSameScore(together[6] as Score, alone[6] as Score);
      rmSync(join(tmpdir(), `rnnlm-runtime-${process.pid}.safetensors`), { force: true });
    } finally {
      m.dispose();
    }
  });

  test('batched requests, sessions (forked, disposed) and aborted calls leave native memory where it was', async () => {
    const m = await trained();
    try {
      // Kept reachable: what dispose frees must not be left to the garbage collector's finalizers.
      const kept: Session[] = [];
      const round = async () => {
        const ss = Array.from({ length: 8 }, () => m.session());
        await Promise.all(ss.map((s, i) => s.append(LONG.slice(0, 10 + 20 * i))));
        const fs = ss.map((s) => s.fork());
        await Promise.all([...ss, ...fs].map((s, i) => s.generate({ maxTokens: 5, seed: i, append: true })));
        await Promise.all(Array.from({ length: 12 }, (_, k) => m.generate({ prompt: LONG.slice(0, 5 + 9 * k), maxTokens: 8, seed: k })));
        const ac = new AbortController();
        const p = m.generate({ prompt: LONG, maxTokens: 1000, signal: ac.signal, onToken: () => ac.abort() }).catch(() => 'aborted');
        await m.score([LONG.slice(0, 300), LONG.slice(7, 100)]);
        expect(await p).toBe('aborted');
        for (const s of [...ss, ...fs]) s.dispose();
        kept.push(...ss, ...fs);
        await m.predictNext(words(3)); // after the sessions' frees
      };
      await round(); // the scheduler's rows and scratch grow to what this load needs, once
      const live = () => cpuBackend.memoryStats().liveBytes;
      const before = live();
      for (let i = 0; i < 3; i++) await round();
      // At most: the collector may free garbage of earlier tests meanwhile (the count is the process's).
      expect(live()).toBeLessThanOrEqual(before);
    } finally {
      m.dispose();
    }
  });

  test('a session of a disposed model: fork, reset, dispose and calls end in ERR_DISPOSED, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const listen = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', listen);
    try {
      const m = await tiny();
      const s = m.session();
      await s.append(words(5));
      const pending = s.append(words(40)); // the model is disposed while it runs
      m.dispose();
      await rejectsWith(pending, 'ERR_DISPOSED');
      let f: Session | undefined;
      try {
        f = s.fork(); // refusing at once (ERR_DISPOSED) would do too
      } catch (e) {
        expect((e as { code?: string }).code).toBe('ERR_DISPOSED');
      }
      s.reset();
      await new Promise((r) => setTimeout(r, 20));
      if (f) await rejectsWith(f.predictNext(), 'ERR_DISPOSED');
      await rejectsWith(s.predictNext(), 'ERR_DISPOSED');
      s.dispose();
      f?.dispose();
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      process.off('unhandledRejection', listen);
    }
  });

  test('dispose: the calls in flight reject with ERR_DISPOSED, and every later call', async () => {
    const m = await trained();
    const s = m.session();
    await s.append(words(5));
    const stream = m.generateStream({ prompt: words(3), maxTokens: 5000, stopAtEos: false });
    let tokens = 0;
    const inFlight: [string, Promise<unknown>][] = [
      ['predictNext', m.predictNext(LONG)],
      ['score', m.score(LONG)],
      ['session.append', s.append(LONG)],
      ['session.generate', m.session().generate({ maxTokens: 5000, stopAtEos: false })],
      ['generateStream', (async () => { for await (const _ of stream); })()],
      ['generate', m.generate({ prompt: words(3), maxTokens: 5000, stopAtEos: false, onToken: (t) => void (t && tokens++ === 3 && m.dispose()) })],
    ];
    for (const [what, p] of inFlight) await rejectsWith(within(20_000, p, what), 'ERR_DISPOSED');
    const later: [string, () => unknown][] = [
      ['predictNext', () => m.predictNext(words(3))],
      ['generate', () => m.generate({ prompt: words(3) })],
      ['generateStream', () => m.generateStream({ prompt: words(3) }).next()],
      ['score', () => m.score(words(3))],
      ['beamSearch', () => m.beamSearch(words(3))],
      ['evaluate', () => m.evaluate(words(30))],
      ['fit', () => m.fit(TEXT, fitOptions)],
      ['save', () => m.save('/tmp/never.safetensors')],
      ['session', () => m.session()],
      ['an earlier session', () => s.predictNext()],
    ];
    for (const [what, call] of later) await rejectsWith(within(20_000, Promise.resolve().then(call), what), 'ERR_DISPOSED');
  });
});
