// The files rnnlm writes (model checkpoints and training-state sidecars): nothing that is not a
// regular file is ever replaced (FIFOs and directories here; devices are refused the same way,
// but tests never touch real ones), symlinks are written through, a model that would not load
// back is refused before any file is touched, and a finished fit leaves only what was asked for.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CONFIG_LIMITS } from '../../lib/checkpoint';
import { RnnlmError } from '../../lib/errors';
import { writeFileAtomic } from '../../lib/io/atomic';
import { LanguageModel, type CreateOptions } from '../../lib/model';
import { WordTokenizer, type Tokenizer } from '../../lib/tokenizers';
import { previousSidecarPath, sidecarPath, type FitOptions } from '../../lib/train';
import { abortAtCheck } from '../helpers';

const root = mkdtempSync(join(tmpdir(), 'rnnlm-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};
const mkfifo = (path: string) => execFileSync('mkfifo', [path]);

const text = 'the cat sat on the mat . the dog sat on the log . a bird sang in the tree . '.repeat(12);
const tokenizer = WordTokenizer.fit(text);
const small: CreateOptions = { tokenizer, embeddingSize: 6, hiddenSize: 6, layers: 1, device: 'cpu', seed: 4 };
const fitOpts: FitOptions = { batchSize: 4, seqLength: 8, progress: false, optimizer: { type: 'adam', lr: 3e-3 } };

async function withModel<T>(fn: (m: LanguageModel) => Promise<T>, options: CreateOptions = small): Promise<T> {
  const m = await LanguageModel.create(options);
  try {
    return await fn(m);
  } finally {
    m.dispose();
  }
}

async function errorOf(p: Promise<unknown>): Promise<RnnlmError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).toBeInstanceOf(RnnlmError);
    return e as RnnlmError;
  }
  throw new Error('expected an RnnlmError, but it resolved');
}

describe('a save never replaces what is not a regular file, and writes through symlinks', () => {
  test('a FIFO at the path: save and writeFileAtomic refuse (ERR_CHECKPOINT naming it); the FIFO stays', async () => {
    const d = freshDir();
    const fifo = join(d, 'model.safetensors');
    mkfifo(fifo);
    const e = await withModel((m) => errorOf(m.save(fifo)));
    expect(e.code).toBe('ERR_CHECKPOINT');
    expect(e.message).toBe(`cannot write ${fifo}: it is a FIFO (named pipe), not a regular file; rnnlm writes only regular files, give the path of a file`);
    expect((await errorOf(writeFileAtomic(fifo, 'x'))).message).toMatch(/it is a FIFO/);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(d)).toEqual(['model.safetensors']); // no temporary file left either
  });

  test('a directory at the path: refused before any temporary file, the directory and its files kept', async () => {
    const d = freshDir();
    const target = join(d, 'model.safetensors');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'k');
    const e = await withModel((m) => errorOf(m.save(target)));
    expect(e.code).toBe('ERR_CHECKPOINT');
    expect(e.message).toMatch(/^cannot write .*model\.safetensors: it is a directory, not a regular file/);
    expect(readdirSync(d)).toEqual(['model.safetensors']);
    expect(readdirSync(target)).toEqual(['keep']);
  });

  test('a symlink to a model file (relative, in another directory): the target gets the new model, the link stays a link', async () => {
    const a = freshDir(), b = freshDir();
    const target = join(a, 'model.safetensors');
    const link = join(b, 'link.safetensors');
    await withModel((m) => m.save(target), { ...small, seed: 1 });
    const old = readFileSync(target);
    symlinkSync(join('..', a.split('/').pop()!, 'model.safetensors'), link);
    const before = readlinkSync(link);
    const reference = join(b, 'reference.safetensors');
    await withModel(async (m) => {
      await m.save(reference);
      await m.save(link);
    }, { ...small, seed: 2 });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe(before);
    const written = readFileSync(target);
    expect(written.equals(old)).toBe(false);
    expect(written.equals(readFileSync(reference))).toBe(true); // exactly the new model
    expect(readdirSync(a)).toEqual(['model.safetensors']); // the temporary file was beside the target, and is gone
    expect(readdirSync(b).sort()).toEqual(['link.safetensors', 'reference.safetensors']);
    (await LanguageModel.load(link, { device: 'cpu' })).dispose();
  });

  test('a chain of symlinks, and a dangling symlink: the file at the end is written (created), the links stay', async () => {
    const d = freshDir();
    const file = join(d, 'real.safetensors');
    symlinkSync('real.safetensors', join(d, 'one'));
    symlinkSync('one', join(d, 'two'));
    symlinkSync('missing.safetensors', join(d, 'dangling'));
    await withModel(async (m) => {
      await m.save(join(d, 'two'));
      await m.save(join(d, 'dangling'));
    });
    for (const l of ['one', 'two', 'dangling']) expect(lstatSync(join(d, l)).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(d, 'missing.safetensors')).equals(readFileSync(file))).toBe(true);
    expect(readdirSync(d).sort()).toEqual(['dangling', 'missing.safetensors', 'one', 'real.safetensors', 'two']);
    // A symlink loop is refused, not followed forever.
    symlinkSync('loop-b', join(d, 'loop-a'));
    symlinkSync('loop-a', join(d, 'loop-b'));
    expect((await errorOf(writeFileAtomic(join(d, 'loop-a'), 'x'))).message).toMatch(/symlinks in a row/);
  });

  test('fit: a FIFO as checkpoint.path or as a training-state file is refused before training starts, and stays', async () => {
    for (const which of ['model', 'state', 'previous state'] as const) {
      const d = freshDir();
      const path = join(d, 'model.safetensors');
      const fifo = which === 'model' ? path : which === 'state' ? sidecarPath(path) : previousSidecarPath(path);
      mkfifo(fifo);
      let epochs = 0;
      const e = await withModel((m) => errorOf(m.fit(text, { ...fitOpts, epochs: 1, checkpoint: { path }, onEpochEnd: () => void epochs++ })));
      expect(e.code).toBe('ERR_CHECKPOINT');
      expect(e.message).toBe(`cannot write ${fifo}: it is a FIFO (named pipe), not a regular file; rnnlm writes only regular files, give the path of a file`);
      expect(epochs, 'no training before the refusal').toBe(0);
      expect(lstatSync(fifo).isFIFO()).toBe(true);
      expect(readdirSync(d)).toEqual([fifo.split('/').pop()]);
    }
  });

  test('fit: checkpoint.path and a training-state file that are symlinks are written through and stay links; resume works through them', async () => {
    const a = freshDir(), b = freshDir();
    const path = join(b, 'lm.safetensors');
    symlinkSync(join(a, 'model.safetensors'), path); // dangling until the first save
    // The training state lives beside the model file it belongs to: the link's target.
    const state = sidecarPath(join(a, 'model.safetensors'));
    const stateFile = join(b, 'state-file');
    symlinkSync(stateFile, state);
    const opts = { ...fitOpts, checkpoint: { path, every: 3, keepTrainingState: true } };
    const straight = await withModel((m) => m.fit(text, { ...fitOpts, epochs: 2 }));
    await withModel((m) => m.fit(text, { ...opts, epochs: 1 }));
    expect(lstatSync(path).isSymbolicLink() && lstatSync(state).isSymbolicLink()).toBe(true);
    expect(existsSync(stateFile)).toBe(true);
    const resumed = await withModel((m) => m.fit(text, { ...opts, epochs: 2, resume: true }));
    expect(resumed.map((l) => l.loss)).toEqual(straight.map((l) => l.loss));
    expect(lstatSync(path).isSymbolicLink() && lstatSync(state).isSymbolicLink()).toBe(true);
    expect(readdirSync(a).sort()).toEqual(['model.safetensors', 'model.train.safetensors']);
    expect(readdirSync(b).sort()).toEqual(['lm.safetensors', 'state-file']);
  });
});

describe('a tokenizer that would not load back is refused at create and at save', () => {
  /** A tokenizer-like object (the duck type create accepts) around a real tokenizer. */
  const fake = (over: Partial<Record<'vocabSize' | 'toJSON', unknown>>): Tokenizer =>
    ({
      kind: 'word', hasUnk: true, tokens: () => tokenizer.tokens(), idOf: (t: string) => tokenizer.idOf(t), tokenOf: (i: number) => tokenizer.tokenOf(i),
      split: (s: string) => tokenizer.split(s), encode: (s: string) => tokenizer.encode(s), encodeSentences: (s: string[]) => tokenizer.encodeSentences(s),
      decode: (ids: ArrayLike<number>) => tokenizer.decode(ids), toJSON: () => tokenizer.toJSON(), vocabSize: tokenizer.vocabSize, ...over,
    }) as Tokenizer;

  test('create: a vocabSize of 0, 1, -5, 2.5 or 2^24 + 1 is ERR_INVALID_ARGUMENT, in the loader\'s range', async () => {
    const { min, max } = CONFIG_LIMITS.vocabSize;
    for (const vocabSize of [0, 1, -5, 2.5, NaN, max + 1]) {
      const e = await errorOf(LanguageModel.create({ ...small, tokenizer: fake({ vocabSize }) }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toBe(`LanguageModel.create: tokenizer.vocabSize must be an integer in [${min}, ${max}] (got ${vocabSize})`);
    }
  });

  test('create: a tokenizer whose JSON the loader refuses, or whose JSON disagrees with its vocabSize', async () => {
    const json = tokenizer.toJSON();
    const cases: [Tokenizer, RegExp][] = [
      [fake({ toJSON: () => ({ ...json, tokens: json.tokens.slice(4) }) }), /tokens\[0\] must be <pad>/],
      [fake({ toJSON: () => ({ ...json, type: 'bpe' }) }), /type must be 'word' or 'char'/],
      [fake({ vocabSize: tokenizer.vocabSize - 1 }), new RegExp(`the tokenizer has ${tokenizer.vocabSize} tokens but config.vocabSize is ${tokenizer.vocabSize - 1}`)],
      [fake({ toJSON: () => { throw new Error('no JSON today'); } }), /no JSON today/],
    ];
    for (const [t, why] of cases) {
      const e = await errorOf(LanguageModel.create({ ...small, tokenizer: t }));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^LanguageModel\.create: the tokenizer would not load back from a checkpoint: /);
      expect(e.message).toMatch(why);
    }
    // One that stores what the loader accepts is fine, and round-trips.
    const d = freshDir();
    await withModel((m) => m.save(join(d, 'ok.safetensors')), { ...small, tokenizer: fake({}) });
    const back = await LanguageModel.load(join(d, 'ok.safetensors'), { device: 'cpu' });
    expect(back.tokenizer!.tokens()).toEqual(tokenizer.tokens());
    back.dispose();
  });

  test('save: a tokenizer that changed into one that would not load back is refused before the file is touched', async () => {
    const d = freshDir();
    const path = join(d, 'model.safetensors');
    let broken = false;
    const t = fake({ toJSON: () => (broken ? { ...tokenizer.toJSON(), version: 2 } : tokenizer.toJSON()) });
    await withModel(async (m) => {
      await m.save(path);
      const before = readFileSync(path);
      broken = true;
      const e = await errorOf(m.save(path));
      expect(e.code).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toMatch(/^save: the tokenizer would not load back from a checkpoint: .*version 2 is not supported/);
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(readdirSync(d)).toEqual(['model.safetensors']);
    }, { ...small, tokenizer: t });
  });
});

describe('training-state files after fit', () => {
  test('a finished run leaves only the model file; keepTrainingState: true keeps the state to resume further', async () => {
    const straight = await withModel((m) => m.fit(text, { ...fitOpts, epochs: 3 }));
    const d = freshDir();
    const path = join(d, 'model.safetensors');
    await withModel((m) => m.fit(text, { ...fitOpts, epochs: 2, checkpoint: { path } }));
    expect(readdirSync(d)).toEqual(['model.safetensors']);

    const k = freshDir();
    const kept = join(k, 'model.safetensors');
    await withModel((m) => m.fit(text, { ...fitOpts, epochs: 2, checkpoint: { path: kept, keepTrainingState: true } }));
    expect(readdirSync(k).sort()).toEqual(['model.safetensors', 'model.train.safetensors']);
    // Resuming further: a third epoch, to the uninterrupted run's numbers; the state is kept again.
    const further = await withModel((m) => m.fit(text, { ...fitOpts, epochs: 3, checkpoint: { path: kept, keepTrainingState: true }, resume: true }));
    expect(further.map((l) => l.loss)).toEqual(straight.map((l) => l.loss));
    expect(readdirSync(k).sort()).toEqual(['model.safetensors', 'model.train.safetensors']);
    // Without it, the resumed run ends like any other: the model file only.
    await withModel((m) => m.fit(text, { ...fitOpts, epochs: 3, checkpoint: { path: kept }, resume: true }));
    expect(readdirSync(k)).toEqual(['model.safetensors']);
    // ... and a resume from it says why it cannot.
    const e = await withModel((m) => errorOf(m.fit(text, { ...fitOpts, epochs: 4, checkpoint: { path: kept }, resume: true })));
    expect(e.code).toBe('ERR_CHECKPOINT');
    expect(e.message).toBe(`${kept} has no training state beside it (${sidecarPath(kept)}): the fit that saved it finished without checkpoint.keepTrainingState, or save() wrote it; load it and fit without resume to train it further from its weights`);
  });

  test('an aborted run keeps its training state (to resume); keepTrainingState is validated', async () => {
    const d = freshDir();
    const path = join(d, 'model.safetensors');
    const e = await withModel((m) => m.fit(text, { ...fitOpts, epochs: 2, checkpoint: { path, every: 4 }, signal: abortAtCheck(10) }).catch((x) => x));
    expect(e).toMatchObject({ name: 'AbortError' });
    expect(existsSync(sidecarPath(path))).toBe(true);
    for (const bad of ['yes', 1, null]) {
      const v = await withModel((m) => errorOf(m.fit(text, { ...fitOpts, checkpoint: { path, keepTrainingState: bad as never } })));
      expect(v.code).toBe('ERR_INVALID_ARGUMENT');
      expect(v.message).toMatch(/^fit: checkpoint: keepTrainingState must be true or false \(got /);
    }
  });
});
