// LanguageModel end to end on small generated data: training learns, both data modes,
// inference (predictNext, generate, beamSearch), checkpoints (save -> load, resume after an
// abort), option validation and the lifetime rules.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { cpuBackend } from '../../lib/backend/cpu';
import { RnnlmError } from '../../lib/errors';
import { networkOf } from '../../lib/advanced';
import { LanguageModel } from '../../lib/model';
import { OPTIMIZER_DEFAULTS, Optimizer } from '../../lib/nn/optimizer';
import { CharTokenizer, EOS_ID, WordTokenizer } from '../../lib/tokenizers';
import { sidecarPath } from '../../lib/train';
import { Random } from '../../lib/util/random';
import { abortAtCheck } from '../helpers';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-model-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A text from a tiny grammar: learnable, but not trivially periodic. */
function corpus(sentences: number, seed = 1): string[] {
  const rng = new Random(seed);
  const pick = <T>(a: T[]) => a[Math.floor(rng.next() * a.length)];
  const out: string[] = [];
  for (let i = 0; i < sentences; i++) {
    out.push(`the ${pick(['cat', 'dog', 'bird'])} ${pick(['sees', 'likes', 'chases'])} the ${pick(['ball', 'tree', 'cat'])} .`);
  }
  return out;
}

async function rejects(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp) {
  let err: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(RnnlmError);
  expect((err as RnnlmError).code).toBe(code);
  if (message) expect((err as RnnlmError).message).toMatch(message);
}

describe('summary', () => {
  test("the Keras GRU model's counts: 77,568 / 3,938,304 / 310,575, total 4,326,447", async () => {
    const m = await LanguageModel.create({ vocabSize: 303, cell: 'gru', embeddingSize: 256, hiddenSize: 1024, layers: 1, device: 'cpu' });
    try {
      const s = m.summary({ print: false });
      expect(s).toMatch(/encoder \(Embedding\)\s+\(batch, seq, 256\)\s+77,568/);
      expect(s).toMatch(/rnn \(GRU\)\s+\(batch, seq, 1024\)\s+3,938,304/);
      expect(s).toMatch(/decoder \(Linear\)\s+\(batch, seq, 303\)\s+310,575/);
      expect(s).toMatch(/Total params: 4,326,447/);
      expect(m.parameterCount).toBe(4_326_447);
    } finally {
      m.dispose();
    }
  });

  test('the CLI prints the same table', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'lib/cli.ts', 'summary', '--cell', 'gru', '--embedding-size', '256', '--hidden-size', '1024', '--layers', '1', '--vocab-size', '303'], {
      cwd: join(__dirname, '..', '..'),
      encoding: 'utf8',
    });
    expect(out).toMatch(/77,568/);
    expect(out).toMatch(/3,938,304/);
    expect(out).toMatch(/310,575/);
    expect(out).toMatch(/Total params: 4,326,447/);
  });
});

describe('training and inference, stream mode (word level)', () => {
  const text = corpus(600).join(' ');
  const tokenizer = WordTokenizer.fit(text);
  let model: LanguageModel;

  test('fit lowers the loss far below chance and logs each epoch', async () => {
    model = await LanguageModel.create({ tokenizer, cell: 'lstm', embeddingSize: 32, hiddenSize: 32, layers: 2, device: 'cpu', seed: 3 });
    const logs: number[] = [];
    const samples: string[] = [];
    const history = await model.fit(text, {
      epochs: 4, batchSize: 8, seqLength: 12, optimizer: { type: 'adam', lr: 1e-2 }, clipNorm: 1, progress: false,
      validation: corpus(60, 2).join(' '),
      onEpochEnd: async (log, m) => {
        logs.push(log.epoch);
        samples.push(await m.generate({ prompt: 'the', maxTokens: 5, seed: 1 })); // inference between epochs is allowed
        await expect(m.fit(text)).rejects.toMatchObject({ code: 'ERR_BUSY' }); // training is not
      },
    });
    expect(logs).toEqual([1, 2, 3, 4]);
    expect(samples).toHaveLength(4);
    expect(history).toHaveLength(4);
    const chance = Math.log(tokenizer.vocabSize);
    expect(history[0].loss).toBeLessThan(chance);
    expect(history[3].loss).toBeLessThan(history[0].loss);
    // The grammar's entropy is about log(3) per content word and 0 elsewhere: ~0.6 nats/token.
    expect(history[3].valLoss!).toBeLessThan(1.0);
    expect(history[3].tokensPerSecond).toBeGreaterThan(0);
  });

  test('predictNext puts the probability where the grammar does', async () => {
    const top = await model.predictNext('the cat likes the ball . the', { topK: 5 });
    expect(['cat', 'dog', 'bird', 'ball', 'tree']).toContain(top[0].token);
    const p = top.filter((t) => ['cat', 'dog', 'bird'].includes(t.token)).reduce((a, t) => a + t.probability, 0);
    expect(p).toBeGreaterThan(0.8); // after a sentence end comes a subject
    for (let i = 1; i < top.length; i++) expect(top[i].probability).toBeLessThanOrEqual(top[i - 1].probability);
    const after = await model.predictNext('the dog', { topK: 3 });
    expect(['sees', 'likes', 'chases']).toContain(after[0].token);
  });

  test('generate: reproducible with a seed, greedy at temperature 0, stop strings, maxTokens', async () => {
    const a = await model.generate({ prompt: 'the', maxTokens: 12, seed: 5 });
    const b = await model.generate({ prompt: 'the', maxTokens: 12, seed: 5 });
    expect(a).toBe(b);
    expect(tokenizer.encode(a).length).toBeLessThanOrEqual(12);
    const greedy = await model.generate({ prompt: 'the cat', maxTokens: 5, temperature: 0 });
    expect(tokenizer.encode(greedy)).toHaveLength(5);
    // Greedy = always the single most likely token.
    const top = await model.predictNext('the cat', { topK: 1 });
    expect(tokenizer.encode(greedy)[0]).toBe(top[0].id);
    const stopped = await model.generate({ prompt: 'the cat', maxTokens: 50, seed: 1, stop: '.' });
    expect(stopped).not.toContain('.');
    const nucleus = await model.generate({ prompt: 'the', maxTokens: 8, seed: 2, topK: 3, topP: 0.9 });
    expect(nucleus.length).toBeGreaterThan(0);
  });

  test('generate: stopAtEos false goes on through <eos> up to maxTokens', async () => {
    // A tokenizer of 1 word (<eos> is its tokenizer's; a model of token ids has none), untrained:
    // <eos> is one of 3 tokens that may be sampled.
    const m = await LanguageModel.create({ tokenizer: WordTokenizer.fit('w'), embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      const words = (text: string) => (text === '' ? [] : text.split(' '));
      const stopped = words(await m.generate({ prompt: 'w', maxTokens: 60, seed: 3 }));
      const through = words(await m.generate({ prompt: 'w', maxTokens: 60, seed: 3, stopAtEos: false }));
      expect(stopped.length).toBeLessThan(60); // an <eos> came
      // The same draws, on past that <eos> (decode leaves <eos> out of the text).
      expect(through.slice(0, stopped.length)).toEqual(stopped);
      expect(through.length).toBeGreaterThan(stopped.length);
      await rejects(m.generate({ stopAtEos: 'no' as never }), 'ERR_INVALID_ARGUMENT', /stopAtEos/);
    } finally {
      m.dispose();
    }
  });

  test('beamSearch returns beams sorted by log-probability; the best first token matches predictNext', async () => {
    const beams = await model.beamSearch('the cat likes', { beamWidth: 3, maxTokens: 4 });
    expect(beams).toHaveLength(3);
    for (let i = 1; i < beams.length; i++) expect(beams[i].logProb).toBeLessThanOrEqual(beams[i - 1].logProb);
    const next = await model.predictNext('the cat likes', { topK: 1 });
    expect(beams[0].ids[0]).toBe(next[0].id);
    expect(beams[0].logProb).toBeLessThan(0);
  });

  test('save -> load -> evaluate gives the identical loss; an independent parser sees the PyTorch names', async () => {
    const path = join(dir, 'word.safetensors');
    await model.save(path);
    const again = await LanguageModel.load(path, { device: 'cpu' });
    try {
      const evalText = corpus(50, 9).join(' ');
      const a = await model.evaluate(evalText);
      const b = await again.evaluate(evalText);
      expect(b.loss).toBe(a.loss);
      expect(b.tokens).toBe(a.tokens);
      expect(again.tokenizer!.vocabSize).toBe(tokenizer.vocabSize);
      expect(await again.predictNext('the dog', { topK: 3 })).toEqual(await model.predictNext('the dog', { topK: 3 }));
    } finally {
      again.dispose();
    }
    const info = JSON.parse(execFileSync('python3', [join(__dirname, '..', 'independent_safetensors.py'), path], { encoding: 'utf8' }));
    const V = tokenizer.vocabSize;
    const expected: Record<string, number[]> = {
      'encoder.weight': [V, 32],
      'rnn.weight_ih_l0': [128, 32], 'rnn.weight_hh_l0': [128, 32], 'rnn.bias_ih_l0': [128], 'rnn.bias_hh_l0': [128],
      'rnn.weight_ih_l1': [128, 32], 'rnn.weight_hh_l1': [128, 32], 'rnn.bias_ih_l1': [128], 'rnn.bias_hh_l1': [128],
      'decoder.weight': [V, 32], 'decoder.bias': [V],
    };
    expect(Object.keys(info.tensors).sort()).toEqual(Object.keys(expected).sort());
    for (const [name, shape] of Object.entries(expected)) {
      expect(info.tensors[name].dtype).toBe('F32');
      expect(info.tensors[name].shape).toEqual(shape);
    }
    expect(JSON.parse(info.metadata.config).cell).toBe('lstm');
    expect(JSON.parse(info.metadata.tokenizer).type).toBe('word');
  });

  test('concurrent calls are all answered, one fit at a time (ERR_BUSY), and nothing after dispose (ERR_DISPOSED)', async () => {
    const text = corpus(20).join(' ');
    const alone = await model.evaluate(text);
    // Every kind of call at once: none is refused, and each answers what it answers alone.
    const [ev, next, gen, beams] = await Promise.all([
      model.evaluate(text), model.predictNext('the'), model.generate({ prompt: 'the', maxTokens: 5, seed: 1 }), model.beamSearch('the', { maxTokens: 3 }),
      model.evaluate(text), model.score('the cat sat'), model.save(join(tmpdir(), `rnnlm-concurrent-${process.pid}.safetensors`)),
    ]);
    expect(ev).toEqual(alone);
    expect(next).toEqual(await model.predictNext('the'));
    expect(gen).toBe(await model.generate({ prompt: 'the', maxTokens: 5, seed: 1 }));
    expect(beams).toEqual(await model.beamSearch('the', { maxTokens: 3 }));
    const training = model.fit(text, { epochs: 1, batchSize: 2, seqLength: 5, progress: false });
    await rejects(model.fit(text), 'ERR_BUSY', /already training/);
    await training;
    model.dispose();
    await rejects(model.predictNext('the'), 'ERR_DISPOSED');
    model.dispose(); // idempotent
  });
});

describe('progress bar', () => {
  async function stderrDuringFit(isTTY: boolean, progress: boolean | undefined): Promise<string> {
    const text = corpus(200).join(' ');
    const model = await LanguageModel.create({ tokenizer: WordTokenizer.fit(text), embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    const original = process.stderr.write.bind(process.stderr);
    const wasTTY = process.stderr.isTTY;
    let captured = '';
    process.stderr.isTTY = isTTY;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      captured += String(chunk);
      return true;
    }) as typeof process.stderr.write;
    try {
      await model.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, ...(progress === undefined ? {} : { progress }) });
    } finally {
      process.stderr.write = original;
      process.stderr.isTTY = wasTTY;
      model.dispose();
    }
    return captured;
  }

  test('on a TTY it shows epoch, loss, perplexity, tokens/s and ETA', async () => {
    const out = await stderrDuringFit(true, undefined);
    expect(out).toMatch(/epoch 1\/1 \[.*\] \d+% \| loss \d+\.\d+ \| ppl \d+\.\d \| \d+ tok\/s \| ETA /);
  });

  test('quiet when stderr is not a TTY, or with progress: false', async () => {
    expect(await stderrDuringFit(false, true)).toBe('');
    expect(await stderrDuringFit(true, false)).toBe('');
  });
});

describe('sentences mode', () => {
  const sentences = corpus(300);
  const tokenizer = WordTokenizer.fit(sentences);

  test('padding is excluded: a padded batch scores the same as the sentences one by one', async () => {
    const model = await LanguageModel.create({ tokenizer, cell: 'gru', embeddingSize: 16, hiddenSize: 16, layers: 2, device: 'cpu', seed: 4 });
    try {
      await model.fit(sentences, { mode: 'sentences', epochs: 8, batchSize: 16, bucketing: true, optimizer: { type: 'adam', lr: 1e-2 }, progress: false });
      const few = ['the cat sees the ball .', 'the dog .', 'the bird chases the tree . the cat'];
      const together = await model.evaluate(few, { mode: 'sentences', batchSize: 3 });
      let nll = 0, n = 0;
      for (const s of few) {
        const r = await model.evaluate([s], { mode: 'sentences', batchSize: 1 });
        nll += r.loss * r.tokens;
        n += r.tokens;
      }
      expect(together.tokens).toBe(n);
      expect(together.loss).toBeCloseTo(nll / n, 5);
      // Generation from <sos> stops at <eos>: a sentence of the grammar.
      const g = await model.generate({ maxTokens: 40, temperature: 0 });
      expect(tokenizer.encode(g).length).toBeLessThan(40);
      expect(g.startsWith('the')).toBe(true);
    } finally {
      model.dispose();
    }
  });
});

describe('inference inside onEpochEnd', () => {
  test('a generate started but not awaited in onEpochEnd ends before training goes on: the losses are unchanged', async () => {
    const text = 'the cat sees the dog. the dog chases the bird. '.repeat(20);
    const tokenizer = CharTokenizer.fit(text);
    async function run(awaitIt: boolean) {
      const m = await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 16, layers: 1, device: 'cpu', seed: 2 });
      const samples: Promise<string>[] = [];
      try {
        const logs = await m.fit(text, {
          epochs: 3, batchSize: 4, seqLength: 16, progress: false, optimizer: { type: 'adam', lr: 1e-2 },
          onEpochEnd: async () => {
            const sample = m.generate({ prompt: 'the', maxTokens: 200, seed: 1, stopAtEos: false });
            samples.push(sample);
            if (awaitIt) await sample;
          },
        });
        return { losses: logs.map((l) => l.loss), samples: await Promise.all(samples) };
      } finally {
        m.dispose();
      }
    }
    const awaited = await run(true);
    const notAwaited = await run(false);
    expect(notAwaited.losses).toEqual(awaited.losses);
    expect(notAwaited.samples).toEqual(awaited.samples);
  });
});

describe('optimizer defaults', () => {
  const text = corpus(40).join(' ');
  const tokenizer = WordTokenizer.fit(text);

  test("SGD's learning rate: one default, the same in Optimizer and in fit", async () => {
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      const opt = new Optimizer(networkOf(m).stream, { type: 'sgd' }, 4, 'f32');
      opt.dispose();
      const [log] = await m.fit(text, { batchSize: 4, seqLength: 8, progress: false, optimizer: { type: 'sgd' } });
      expect(log.lr).toBe(opt.lr);
      expect(opt.lr).toBe(OPTIMIZER_DEFAULTS.sgd.lr);
    } finally {
      m.dispose();
    }
  });

  test("the string form ('adam', 'adamw', 'sgd') is the type with its defaults", async () => {
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      for (const type of ['adam', 'adamw', 'sgd'] as const) {
        const [log] = await m.fit(text, { batchSize: 4, seqLength: 8, progress: false, optimizer: type });
        expect(log.lr).toBe(OPTIMIZER_DEFAULTS[type].lr);
      }
      await rejects(m.fit(text, { optimizer: 'rmsprop' as never }), 'ERR_INVALID_ARGUMENT', /^fit: optimizer must be 'adam', 'adamw', 'sgd' or an object .*\(got "rmsprop"\)/);
    } finally {
      m.dispose();
    }
  });
});

describe('checkpoints during training and exact resume', () => {
  for (const mode of ['stream', 'sentences'] as const) {
    test(`${mode}: aborted mid-epoch and resumed, training ends at the same numbers as an uninterrupted run`, async () => {
      const sentences = corpus(120);
      const data = mode === 'stream' ? sentences.join(' ') : sentences;
      const tokenizer = CharTokenizer.fit(sentences.join(' '));
      const opts = {
        mode, epochs: 3, batchSize: 4, seqLength: 16, progress: false,
        optimizer: { type: 'adam' as const, lr: 5e-3 }, lrSchedule: { type: 'step' as const, factor: 0.5, start: 1 }, clipNorm: 1,
      };
      const make = () => LanguageModel.create({ tokenizer, cell: 'lstm', embeddingSize: 8, hiddenSize: 16, layers: 2, dropout: 0.1, device: 'cpu', seed: 7 });
      const straight = await make();
      const full = await straight.fit(data, opts);
      straight.dispose();

      const path = join(dir, `resume-${mode}.safetensors`);
      const first = await make();
      const perEpoch = mode === 'stream' ? Math.ceil((Math.floor(tokenizer.encode(sentences.join(' ')).length / 4) - 1) / 16) : Math.ceil(120 / 4);
      const stopAt = perEpoch + Math.floor(perEpoch / 2); // in the middle of epoch 2
      await expect(first.fit(data, { ...opts, checkpoint: { path, every: 7 }, signal: abortAtCheck(stopAt) })).rejects.toMatchObject({ name: 'AbortError' });
      first.dispose();
      expect(existsSync(path) && existsSync(sidecarPath(path))).toBe(true);

      const second = await make(); // fresh weights: everything must come from the checkpoint
      const resumed = await second.fit(data, { ...opts, checkpoint: { path }, resume: true });
      second.dispose();
      expect(resumed.map((h) => h.epoch)).toEqual([1, 2, 3]);
      expect(resumed.map((h) => h.loss)).toEqual(full.map((h) => h.loss));
      expect(resumed.map((h) => h.lr)).toEqual([5e-3, 2.5e-3, 1.25e-3]);
    });
  }

  test('resume refuses a checkpoint made with other data or options', async () => {
    const text = corpus(100).join(' ');
    const tokenizer = CharTokenizer.fit(text);
    const path = join(dir, 'mismatch.safetensors');
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    try {
      await m.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, checkpoint: { path, keepTrainingState: true }, progress: false });
      await rejects(m.fit(text, { epochs: 2, batchSize: 5, seqLength: 8, checkpoint: { path }, resume: true, progress: false }), 'ERR_INVALID_ARGUMENT', /different data or options/);
    } finally {
      m.dispose();
    }
  });
});

describe('non-finite steps', () => {
  const text = corpus(80).join(' ');
  const tokenizer = WordTokenizer.fit(text);
  // Decoder biases of +-3e38 are finite, but every target then has loss 3e38 - (-3e38) = Inf.
  async function poisoned() {
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    const V = tokenizer.vocabSize;
    networkOf(m).writeParam('decoder.bias', Float32Array.from({ length: V }, (_, i) => (i === 0 ? 3e38 : -3e38))); // <pad> is never a target
    return m;
  }

  test("nonFinite 'stop' (default): ERR_NON_FINITE, and no update reached the weights", async () => {
    const m = await poisoned();
    try {
      const before = await networkOf(m).stream.read(networkOf(m).allParams);
      await rejects(m.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, progress: false }), 'ERR_NON_FINITE', /training loss became Infinity.*weights are still finite/);
      expect(await networkOf(m).stream.read(networkOf(m).allParams)).toEqual(before);
    } finally {
      m.dispose();
    }
  });

  test("nonFinite 'skip': training goes on, every step is counted as skipped, the weights are unchanged", async () => {
    const m = await poisoned();
    try {
      const before = await networkOf(m).stream.read(networkOf(m).allParams);
      const [log] = await m.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, progress: false, nonFinite: 'skip' });
      expect(log.skipped).toBeGreaterThan(0);
      expect(log.tokens).toBe(0);
      expect(await networkOf(m).stream.read(networkOf(m).allParams)).toEqual(before);
      await rejects(m.fit(text, { nonFinite: 'ignore' as never }), 'ERR_INVALID_ARGUMENT', /nonFinite must be one of 'stop', 'skip'/);
    } finally {
      m.dispose();
    }
  });
});

describe('validation of options and inputs', () => {
  const text = corpus(50).join(' ');
  const tokenizer = WordTokenizer.fit(text);

  test('create: wrong type, out of range, unknown key, contradictions', async () => {
    await rejects(LanguageModel.create({ tokenizer, hiddenSize: '200' as never }), 'ERR_INVALID_ARGUMENT', /hiddenSize must be an integer/);
    await rejects(LanguageModel.create({ tokenizer, layers: 0 }), 'ERR_INVALID_ARGUMENT', /layers must be an integer >= 1/);
    await rejects(LanguageModel.create({ tokenizer, dropout: 1.5 }), 'ERR_INVALID_ARGUMENT', /dropout must be/);
    await rejects(LanguageModel.create({ tokenizer, cell: 'transformer' as never }), 'ERR_INVALID_ARGUMENT', /cell must be one of/);
    await rejects(LanguageModel.create({ tokenizer, hiddenSzie: 3 } as never), 'ERR_INVALID_ARGUMENT', /unknown option 'hiddenSzie'/);
    await rejects(LanguageModel.create({ tokenizer, tieWeights: true, embeddingSize: 10, hiddenSize: 20 }), 'ERR_INVALID_ARGUMENT', /tieWeights needs/);
    await rejects(LanguageModel.create({}), 'ERR_INVALID_ARGUMENT', /tokenizer or a vocabSize/);
    await rejects(LanguageModel.create({ tokenizer, device: 'gpu' as never }), 'ERR_INVALID_ARGUMENT', /device must be one of/);
  });

  test('fit, generate, predictNext, beamSearch, evaluate: bad options and bad data', async () => {
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    try {
      await rejects(m.fit(text, { epochs: 0 }), 'ERR_INVALID_ARGUMENT', /epochs must be an integer >= 1/);
      await rejects(m.fit(text, { batchSize: 2.5 }), 'ERR_INVALID_ARGUMENT', /batchSize must be an integer/);
      await rejects(m.fit(text, { optimizer: { type: 'rmsprop' } as never }), 'ERR_INVALID_ARGUMENT', /optimizer.type must be/);
      await rejects(m.fit(text, { optimizer: { type: 'adam', lr: -1 } }), 'ERR_INVALID_ARGUMENT', /lr must be/);
      await rejects(m.fit(text, { optimizer: { type: 'adam', momentum: 0.9 } as never }), 'ERR_INVALID_ARGUMENT', /unknown option 'momentum'/);
      await rejects(m.fit(text, { lrSchedule: { type: 'step', factor: 2 } }), 'ERR_INVALID_ARGUMENT', /factor must be/);
      await rejects(m.fit(text, { clipNorm: 0 }), 'ERR_INVALID_ARGUMENT', /clipNorm must be/);
      await rejects(m.fit(text, { epoch: 3 } as never), 'ERR_INVALID_ARGUMENT', /unknown option 'epoch'/);
      await rejects(m.fit(text, { signal: {} as never }), 'ERR_INVALID_ARGUMENT', /signal must be an AbortSignal/);
      await rejects(m.fit(text, { resume: true }), 'ERR_INVALID_ARGUMENT', /needs checkpoint.path/);
      await rejects(m.fit(''), 'ERR_INVALID_ARGUMENT', /empty/);
      await rejects(m.fit('the cat', { batchSize: 20, seqLength: 35 }), 'ERR_INVALID_ARGUMENT', /too short|shorter than one window/);
      await rejects(m.fit([1, 2, 999999] as never), 'ERR_VOCAB', /token id 999999/);
      await rejects(m.generate({ temperature: -1 }), 'ERR_INVALID_ARGUMENT', /temperature must be/);
      await rejects(m.generate({ prompt: 'the', topP: 0 }), 'ERR_INVALID_ARGUMENT', /topP must be/);
      await rejects(m.beamSearch(''), 'ERR_INVALID_ARGUMENT', /prompt is empty/);
      await rejects(m.generate({ prompt: 'the', stop: [''] }), 'ERR_INVALID_ARGUMENT', /stop must be/);
      await rejects(m.predictNext('the', { topK: 0 }), 'ERR_INVALID_ARGUMENT', /topK must be/);
      await rejects(m.beamSearch('the', { beamWidth: 0 }), 'ERR_INVALID_ARGUMENT', /beamWidth must be/);
      await rejects(m.evaluate(text, { batchSize: -1 }), 'ERR_INVALID_ARGUMENT', /batchSize must be/);
      await rejects(m.save(''), 'ERR_INVALID_ARGUMENT', /path must be/);
    } finally {
      m.dispose();
    }
  });

  test('a prompt of characters outside a char vocabulary without <unk> names the character', async () => {
    const chars = CharTokenizer.fit('abcabc abc');
    const m = await LanguageModel.create({ tokenizer: chars, embeddingSize: 4, hiddenSize: 4, layers: 1, device: 'cpu' });
    try {
      await rejects(m.generate({ prompt: 'abz' }), 'ERR_VOCAB', /'z'/);
      await rejects(m.predictNext('é'), 'ERR_VOCAB', /'é'/);
    } finally {
      m.dispose();
    }
  });

  test('load: a missing file and a file that is not an rnnlm checkpoint', async () => {
    await rejects(LanguageModel.load(join(dir, 'nope.safetensors')), 'ERR_CHECKPOINT', /nope.safetensors/);
  });

  test("device 'auto' picks the CPU here and says why; 'cuda' is unavailable with a reason", async () => {
    const m = await LanguageModel.create({ tokenizer, embeddingSize: 4, hiddenSize: 4, layers: 1 });
    try {
      expect(m.device).toBe('cpu');
      expect(m.deviceReason).toMatch(/^auto: CPU, because /);
    } finally {
      m.dispose();
    }
    await rejects(LanguageModel.create({ tokenizer, device: 'cuda' }), 'ERR_CUDA_UNAVAILABLE', /CUDA/);
  });
});

describe('memory limits', () => {
  test('a model or a batch that cannot fit is ERR_OUT_OF_MEMORY before anything is allocated', async () => {
    const allocations = () => cpuBackend.memoryStats().allocations;
    const before = allocations();
    // 2^24 x 4096 embedding alone: 275 GB of parameters.
    await expect(LanguageModel.create({ vocabSize: 2 ** 24, embeddingSize: 4096, hiddenSize: 16, device: 'cpu' })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/parameters and gradients; the cpu has .* GiB available/),
    });
    expect(allocations()).toBe(before);
    const m = await LanguageModel.create({ vocabSize: 50_000, embeddingSize: 8, hiddenSize: 8, layers: 1, device: 'cpu' });
    const ids = Int32Array.from({ length: 4096 * 513 + 1 }, (_, i) => 4 + (i % 1000));
    const made = allocations();
    // Logits alone of 4096 x 512 positions x 50,000 words: 420 GB.
    await expect(m.fit(ids, { batchSize: 4096, seqLength: 512, progress: false })).rejects.toMatchObject({
      code: 'ERR_OUT_OF_MEMORY', message: expect.stringMatching(/fit: batches of 4096 x 512 need .* of activations .* lower batchSize or seqLength/),
    });
    expect(allocations()).toBe(made);
    const [log] = await m.fit(ids.subarray(0, 2000), { batchSize: 4, seqLength: 8, progress: false }); // and the process lives on
    expect(Number.isFinite(log.loss)).toBe(true);
    m.dispose();
  });
});
