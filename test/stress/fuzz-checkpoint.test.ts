// Hostile checkpoints: a bounded, seeded fuzz over mutations of a valid checkpoint (and of its
// training-state sidecar). Every mutated file either loads into a working model or is refused
// with ERR_CHECKPOINT: no other error, no crash, no hang. FUZZ_CASES scales it (npm run
// test:stress uses more).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { LanguageModel } from '../../lib/model';
import { WordTokenizer } from '../../lib/tokenizers';
import { previousSidecarPath, sidecarPath } from '../../lib/train';
import { Random } from '../../lib/util/random';

const cases = Number(process.env.FUZZ_CASES ?? 3000);
const dir = mkdtempSync(join(tmpdir(), 'rnnlm-fuzz-'));
const text = 'the cat sat on the mat . the dog sat on the log . '.repeat(30);
let valid: Buffer;
/** The same model saved in each weight dtype (F32, F16, BF16, and int8: I8 matrices with F32 `_scale`s): the fuzz mutates each in turn. */
let bases: Buffer[];
let validSidecar: Buffer;
const modelPath = join(dir, 'valid.safetensors');

beforeAll(async () => {
  const m = await LanguageModel.create({ tokenizer: WordTokenizer.fit(text), embeddingSize: 6, hiddenSize: 6, layers: 1, device: 'cpu' });
  await m.fit(text, { epochs: 1, batchSize: 4, seqLength: 8, progress: false, checkpoint: { path: modelPath, keepTrainingState: true } });
  for (const dtype of ['f16', 'bf16', 'int8'] as const) await m.save(join(dir, `valid.${dtype}.safetensors`), { dtype });
  m.dispose();
  valid = readFileSync(modelPath);
  bases = [valid, ...['f16', 'bf16', 'int8'].map((dtype) => readFileSync(join(dir, `valid.${dtype}.safetensors`)))];
  validSidecar = readFileSync(sidecarPath(modelPath));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One random structural mutation of a safetensors file. */
function mutate(src: Buffer, rng: Random): Buffer {
  const buf = Buffer.from(src);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const pick = (n: number) => Math.floor(rng.next() * n);
  switch (pick(9)) {
    case 0: // truncate anywhere
      return buf.subarray(0, pick(buf.length));
    case 1: // absurd or off-by-some header length
      buf.writeBigUInt64LE([0n, 1n, BigInt(headerLen + 1 + pick(64)), BigInt(buf.length), 2n ** 62n, 2n ** 64n - 1n][pick(6)], 0);
      return buf;
    case 2: // random bytes in the header
      for (let k = 0, n = 1 + pick(4); k < n; k++) buf[8 + pick(headerLen)] = pick(256);
      return buf;
    case 3: { // replace a number in the header JSON
      const header = buf.subarray(8, 8 + headerLen).toString('utf8');
      const nums = [...header.matchAll(/\d+/g)];
      if (!nums.length) return buf;
      const m = nums[pick(nums.length)];
      const repl = String([0, 1, 3, 7, 65536, 2 ** 31, 2 ** 53, Number(m[0]) + 1, Number(m[0]) - 1][pick(9)]);
      return rebuild(buf, header.slice(0, m.index) + repl + header.slice(m.index! + m[0].length), headerLen);
    }
    case 4: { // replace a string in the header JSON (dtypes, names, metadata)
      const header = buf.subarray(8, 8 + headerLen).toString('utf8');
      const strs = [...header.matchAll(/"([^"\\]{1,40})"/g)];
      if (!strs.length) return buf;
      const m = strs[pick(strs.length)];
      const repl = ['F16', 'BF16', 'F32', 'I64', 'U8', 'F64', 'I8', 'bogus', '', 'encoder.weight', 'decoder.weight_scale', '__metadata__', '{}', 'lstm', 'gru'][pick(15)];
      return rebuild(buf, header.slice(0, m.index) + `"${repl}"` + header.slice(m.index! + m[0].length), headerLen);
    }
    case 5: { // mutate the metadata JSON strings (config, tokenizer) inside the header
      const header = buf.subarray(8, 8 + headerLen).toString('utf8');
      const at = header.indexOf('\\"');
      if (at < 0) return buf;
      const pos = at + pick(Math.max(1, header.length - at - 2));
      return rebuild(buf, header.slice(0, pos) + ['9', '-', '\\"x\\"', 'null', ''][pick(5)] + header.slice(pos + 1), headerLen);
    }
    case 6: // bytes appended or removed at the end
      return rng.next() < 0.5 ? Buffer.concat([buf, Buffer.alloc(1 + pick(16))]) : buf.subarray(0, buf.length - 1 - pick(8));
    case 7: { // drop a tensor entry's key from the header
      const header = buf.subarray(8, 8 + headerLen).toString('utf8');
      return rebuild(buf, header.replace(/"(rnn\.[^"]+|decoder\.bias|encoder\.weight)":\{[^}]*\},?/, ''), headerLen);
    }
    default: // data bytes: may still be a valid file (then it must load and work)
      for (let k = 0, n = 1 + pick(8); k < n; k++) buf[8 + headerLen + pick(buf.length - 8 - headerLen)] = pick(256);
      return buf;
  }
}

function rebuild(buf: Buffer, header: string, oldLen: number): Buffer {
  const h = Buffer.from(header, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, buf.subarray(8 + oldLen)]);
}

describe('mutated checkpoints', () => {
  test(`${cases} seeded mutations of F32, F16, BF16 and int8 checkpoints: each loads and works, or is ERR_CHECKPOINT`, async () => {
    const rng = new Random(20261122);
    const path = join(dir, 'case.safetensors');
    let refused = 0, loaded = 0, int8 = 0;
    const other: string[] = [];
    for (let i = 0; i < cases; i++) {
      writeFileSync(path, mutate(bases[i % bases.length], rng));
      try {
        const m = await LanguageModel.load(path, { device: 'cpu' });
        if (m.quantization === 'int8') int8++;
        try {
          const r = await m.evaluate(text.slice(0, 200));
          if (!Number.isFinite(r.loss) && !Number.isNaN(r.loss)) other.push(`case ${i}: infinite loss`);
          loaded++;
        } catch (e) {
          // A model whose weights are finite but extreme may overflow: that must be a typed error.
          if (!(e instanceof RnnlmError)) other.push(`case ${i}: evaluate threw ${String(e)}`);
          loaded++;
        } finally {
          m.dispose();
        }
      } catch (e) {
        if (e instanceof RnnlmError && e.code === 'ERR_CHECKPOINT') refused++;
        else other.push(`case ${i}: ${e instanceof RnnlmError ? e.code : 'untyped'}: ${String((e as Error).message ?? e).slice(0, 200)}`);
      }
    }
    console.log(`checkpoint fuzz: ${cases} cases, ${refused} refused with ERR_CHECKPOINT, ${loaded} loaded and evaluated (${int8} of them int8 models), ${other.length} other`);
    expect(other).toEqual([]);
    expect(refused).toBeGreaterThan(cases / 2);
    // The int8 base reaches the int8 model (86 of its 750 mutations at 3000 cases), not only the reader's refusals.
    expect(int8).toBeGreaterThan(0);
  }, 300_000);

  test('a config that claims a huge model over small tensors is ERR_CHECKPOINT, before any allocation', async () => {
    // Found by the 50,000-case run: hiddenSize 65536 in the metadata was refused as ERR_OUT_OF_MEMORY.
    const headerLen = Number(valid.readBigUInt64LE(0));
    const header = valid.subarray(8, 8 + headerLen).toString('utf8');
    const path = join(dir, 'huge.safetensors');
    writeFileSync(path, rebuild(valid, header.replace(/(\\"hiddenSize\\":)\d+/, '$165536').replace(/(\\"embeddingSize\\":)\d+/, '$165536'), headerLen));
    expect(readFileSync(path).toString('utf8')).toContain('65536');
    await expect(LanguageModel.load(path, { device: 'cpu' })).rejects.toMatchObject({
      code: 'ERR_CHECKPOINT', message: expect.stringMatching(/has shape \[\d+, 6\]; the config needs \[\d+, 65536\]/),
    });
  });

  test(`${Math.ceil(cases / 10)} mutations of the training-state sidecar: resume works or is ERR_CHECKPOINT`, async () => {
    const rng = new Random(7);
    const other: string[] = [];
    let refused = 0;
    const path = join(dir, 'resume.safetensors');
    for (let i = 0; i < Math.ceil(cases / 10); i++) {
      writeFileSync(path, valid);
      writeFileSync(sidecarPath(path), mutate(validSidecar, rng));
      // The last case's save moved its sidecar aside; resume would fall back to it.
      rmSync(previousSidecarPath(path), { force: true });
      const m = await LanguageModel.create({ tokenizer: WordTokenizer.fit(text), embeddingSize: 6, hiddenSize: 6, layers: 1, device: 'cpu' });
      try {
        await m.fit(text, { epochs: 2, batchSize: 4, seqLength: 8, progress: false, checkpoint: { path }, resume: true });
      } catch (e) {
        if (e instanceof RnnlmError && e.code === 'ERR_CHECKPOINT') refused++;
        else if (!(e instanceof RnnlmError && (e.code === 'ERR_INVALID_ARGUMENT' || e.code === 'ERR_NON_FINITE'))) {
          other.push(`case ${i}: ${String((e as Error).message ?? e).slice(0, 200)}`);
        }
      } finally {
        m.dispose();
      }
    }
    console.log(`sidecar fuzz: ${Math.ceil(cases / 10)} cases, ${refused} refused with ERR_CHECKPOINT, ${other.length} other`);
    expect(other).toEqual([]);
  }, 300_000);
});
