// safetensors reading and writing (lib/io/safetensors.ts) and atomic file replacement, moving
// and removal (lib/io/atomic.ts): round trips, exact bytes, alignment, agreement with an independent
// Python reader, and a catalogue of malformed files that must all be refused.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { RnnlmError } from '../../lib/errors';
import { moveFileAtomic, removeFile, writeFileAtomic } from '../../lib/io/atomic';
import { errorOf } from '../helpers';
import {
  parse,
  readSafetensorsFile,
  serialize,
  writeSafetensorsFile,
  type SafeTensor,
} from '../../lib/io/safetensors';

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnlm-safetensors-'));
});
afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});


async function asyncErrorOf(fn: () => Promise<unknown>): Promise<string> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RnnlmError);
    return `${(e as RnnlmError).code}: ${(e as RnnlmError).message}`;
  }
  throw new Error('expected an RnnlmError, but nothing was thrown');
}

/** A file with the given header text (unpadded, unchecked) and data bytes. */
function rawFile(header: string | object, data: ArrayLike<number> = [], headerLength?: bigint): Uint8Array {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeBigUInt64LE(headerLength ?? BigInt(json.length), 0);
  json.copy(out, 8);
  out.set(Uint8Array.from(data), 8 + json.length);
  return out;
}

function entry(dtype: string, shape: unknown[], offsets: unknown[]): object {
  return { dtype, shape, data_offsets: offsets };
}

function sameTensor(a: SafeTensor, b: SafeTensor): void {
  expect(a.dtype).toBe(b.dtype);
  expect(a.shape).toEqual(b.shape);
  expect(a.data.constructor).toBe(b.data.constructor);
  expect(Array.from(a.data as ArrayLike<number | bigint>)).toEqual(Array.from(b.data as ArrayLike<number | bigint>));
}

// A little of everything: every dtype, a scalar, empty tensors, awkward values and sizes.
function sampleTensors(): Map<string, SafeTensor> {
  return new Map<string, SafeTensor>([
    ['encoder.weight', { dtype: 'F32', shape: [3, 4], data: Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 3) }],
    ['u8', { dtype: 'U8', shape: [5], data: Uint8Array.from([0, 1, 127, 128, 255]) }], // makes what follows unaligned
    ['f64', { dtype: 'F64', shape: [2, 2], data: Float64Array.from([Math.PI, -0, 1e-300, -1.7976931348623157e308]) }],
    ['i32', { dtype: 'I32', shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) }],
    ['i64', { dtype: 'I64', shape: [4], data: BigInt64Array.from([-(2n ** 63n), -1n, 2n ** 53n + 1n, 2n ** 63n - 1n]) }],
    ['scalar', { dtype: 'F32', shape: [], data: Float32Array.from([42.5]) }],
    ['empty', { dtype: 'F32', shape: [3, 0, 2], data: new Float32Array(0) }],
    ['empty.i64', { dtype: 'I64', shape: [0], data: new BigInt64Array(0) }],
    ['9', { dtype: 'I32', shape: [1, 1], data: Int32Array.from([9]) }], // integer-like name keeps its place
    ['ünï.cödé', { dtype: 'U8', shape: [], data: Uint8Array.from([7]) }],
  ]);
}

describe('round trips', () => {
  test('every dtype, scalars and empty tensors, metadata, insertion order', () => {
    const tensors = sampleTensors();
    const metadata = { config: JSON.stringify({ cell: 'lstm', layers: 2 }), note: 'ünïcödé ✓', empty: '' };
    const bytes = serialize(tensors, metadata);
    const back = parse(bytes);
    expect(back.metadata).toEqual(metadata);
    expect([...back.tensors.keys()]).toEqual([...tensors.keys()]);
    for (const [name, t] of tensors) sameTensor(back.tensors.get(name)!, t);
    // the header lists tensors in the given order too
    const n = Number(Buffer.from(bytes).readBigUInt64LE(0));
    const header = Buffer.from(bytes.subarray(8, 8 + n)).toString('utf8');
    const positions = [...tensors.keys()].map((k) => header.indexOf(JSON.stringify(k) + ':{"dtype"'));
    expect(positions.every((p, i) => p > 0 && (i === 0 || p > positions[i - 1]))).toBe(true);
  });

  test('one tensor of each dtype on its own, and the values exactly', () => {
    for (const [name, t] of sampleTensors()) {
      const back = parse(serialize({ [name]: t }));
      expect(back.metadata).toEqual({});
      expect(back.tensors.size).toBe(1);
      sameTensor(back.tensors.get(name)!, t);
    }
    const f32 = Float32Array.from([1.5, -3.25, 3.4028234663852886e38, 1.401298464324817e-45]);
    const back = parse(serialize({ x: { dtype: 'F32', shape: [4], data: f32 } })).tensors.get('x')!.data;
    expect(Object.is(back[0], 1.5) && back[3] === f32[3] && back[2] === f32[2]).toBe(true);
  });

  test('an object of tensors, no tensors at all, and a plain-object record', () => {
    const empty = serialize({});
    expect(parse(empty).tensors.size).toBe(0);
    expect(Buffer.from(empty).subarray(8).toString('utf8')).toBe('{}' + ' '.repeat(6));
    const r = parse(serialize({ b: { dtype: 'U8', shape: [2], data: Uint8Array.from([1, 2]) } }, {}));
    expect(r.metadata).toEqual({});
    expect(Array.from(r.tensors.get('b')!.data as Uint8Array)).toEqual([1, 2]);
  });

  test('returned arrays are aligned copies even when the input bytes are unaligned', () => {
    const bytes = serialize(sampleTensors());
    for (const shift of [1, 3, 5]) {
      const host = new Uint8Array(bytes.length + shift);
      host.set(bytes, shift);
      const view = host.subarray(shift);
      const back = parse(view);
      for (const [name, t] of sampleTensors()) {
        const got = back.tensors.get(name)!;
        sameTensor(got, t);
        expect(got.data.byteOffset % got.data.BYTES_PER_ELEMENT).toBe(0);
        expect(got.data.buffer).not.toBe(host.buffer);
      }
      // a copy: scribbling on the input changes nothing already read
      host.fill(0xff);
      sameTensor(back.tensors.get('f64')!, sampleTensors().get('f64')!);
    }
  });

  test('file round trip through writeSafetensorsFile / readSafetensorsFile, overwriting', async () => {
    const file = path.join(dir, 'model.safetensors');
    await writeSafetensorsFile(file, { a: { dtype: 'F32', shape: [1], data: Float32Array.from([1]) } });
    await writeSafetensorsFile(file, sampleTensors(), { format: 'pt' });
    const back = await readSafetensorsFile(file);
    expect(back.metadata).toEqual({ format: 'pt' });
    for (const [name, t] of sampleTensors()) sameTensor(back.tensors.get(name)!, t);
    expect(fs.readdirSync(dir).filter((f) => f.includes('model.safetensors'))).toEqual(['model.safetensors']);
  });
});

describe('exact bytes', () => {
  test('a tiny file, byte for byte', () => {
    const bytes = serialize({ a: { dtype: 'F32', shape: [2], data: Float32Array.from([1, -2]) } }, { k: 'v' });
    const json = '{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(json.length).toBe(79); // 8 + 79 = 87, so one space pads the data start to 88
    const expected = [
      0x50, 0, 0, 0, 0, 0, 0, 0, // header length 80, u64 little-endian
      ...Array.from(json, (c) => c.charCodeAt(0)),
      0x20, // padding
      0x00, 0x00, 0x80, 0x3f, // 1.0f  = 0x3f800000, little-endian
      0x00, 0x00, 0x00, 0xc0, // -2.0f = 0xc0000000, little-endian
    ];
    expect(expected.length).toBe(96);
    expect(Array.from(bytes)).toEqual(expected);
  });

  test('I64 and I32 are little-endian two\'s complement', () => {
    const bytes = serialize(new Map<string, SafeTensor>([
      ['q', { dtype: 'I64', shape: [1], data: BigInt64Array.from([-2n]) }],
      ['i', { dtype: 'I32', shape: [1], data: Int32Array.from([0x01020304]) }],
    ]));
    const json = '{"q":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"i":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}';
    expect(json.length).toBe(108); // 8 + 108 = 116 -> 120: four spaces
    expect(Array.from(bytes)).toEqual([
      112, 0, 0, 0, 0, 0, 0, 0,
      ...Array.from(json, (c) => c.charCodeAt(0)),
      0x20, 0x20, 0x20, 0x20,
      0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0x04, 0x03, 0x02, 0x01,
    ]);
  });

  test('the data region starts 8-byte aligned, after space padding, whatever the header length', () => {
    for (let len = 1; len <= 24; len++) {
      const name = 'n'.repeat(len);
      const bytes = Buffer.from(serialize({ [name]: { dtype: 'F64', shape: [1], data: Float64Array.from([len]) } }));
      const n = Number(bytes.readBigUInt64LE(0));
      expect((8 + n) % 8).toBe(0);
      const header = bytes.subarray(8, 8 + n).toString('utf8');
      const trimmed = header.trimEnd();
      expect(header.length - trimmed.length).toBeLessThan(8);
      expect(/^ *$/.test(header.slice(trimmed.length))).toBe(true);
      expect(bytes.length).toBe(8 + n + 8);
      expect(bytes.readDoubleLE(8 + n)).toBe(len);
    }
  });
});

const python3 = spawnSync('python3', ['--version'], { encoding: 'utf8' }).status === 0;
/** The test's name, saying why when it is skipped. */
const needsPython = (name: string) => (python3 ? name : `${name} [SKIPPED: python3 is not installed on this machine]`);

describe('independent Python reader', () => {
  test.skipIf(!python3)(needsPython('agrees on names, dtypes, shapes, sums and first elements'), async () => {
    const file = path.join(dir, 'cross.safetensors');
    const tensors = sampleTensors();
    const metadata = { config: '{"hiddenSize":200}', 'ключ': 'значение' };
    await writeSafetensorsFile(file, tensors, metadata);
    const out = JSON.parse(execFileSync('python3', [path.join(__dirname, '..', 'independent_safetensors.py'), file], { encoding: 'utf8' }));
    expect(out.metadata).toEqual(metadata);
    expect(Object.keys(out.tensors).sort()).toEqual([...tensors.keys()].sort());
    for (const [name, t] of tensors) {
      const py = out.tensors[name];
      expect(py.dtype).toBe(t.dtype);
      expect(py.shape).toEqual(t.shape);
      const values = Array.from(t.data as ArrayLike<number | bigint>, Number);
      const sum = values.reduce((a, b) => a + b, 0);
      const scale = values.reduce((a, b) => a + Math.abs(b), 0);
      expect(typeof py.sum).toBe('number');
      expect(Math.abs(py.sum - sum)).toBeLessThanOrEqual(1e-12 * Math.max(1, scale));
      if (values.length === 0) expect(py.first).toBeNull();
      else expect(py.first).toBe(values[0]);
    }
    // float32 values exactly as Python decodes them
    const enc = out.tensors['encoder.weight'];
    expect(enc.sum).toBeCloseTo(Array.from(tensors.get('encoder.weight')!.data as Float32Array).reduce((a, b) => a + b, 0), 12);
  });

  test.skipIf(!python3)(needsPython('refuses a file with a hole, as we do'), () => {
    const bad = path.join(dir, 'gap.safetensors');
    fs.writeFileSync(bad, rawFile({ a: entry('U8', [1], [0, 1]), b: entry('U8', [1], [2, 3]) }, [1, 2, 3]));
    const r = spawnSync('python3', [path.join(__dirname, '..', 'independent_safetensors.py'), bad], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/hole/);
  });
});

describe('malformed files are refused with ERR_CHECKPOINT', () => {
  const good = () => serialize({ w: { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) } });
  const u8 = (n: number) => Array.from({ length: n }, (_, i) => i);

  const cases: [string, () => Uint8Array, RegExp][] = [
    ['empty file', () => new Uint8Array(0), /0 bytes long, too short/],
    ['fewer than 8 bytes', () => Uint8Array.from([2, 0, 0, 0, 0, 0, 0]), /7 bytes long, too short/],
    ['truncated file (last byte missing)', () => good().subarray(0, good().length - 1), /checkpoint tensor 'w': data_offsets \[0, 16\] run past the end of the data region \(15 bytes\)/],
    ['truncated inside the header', () => good().subarray(0, 20), /header length \d+ runs past the end of the file \(20 bytes\)/],
    ['header length beyond the file', () => rawFile('{}', [], 3n), /header length 3 runs past the end of the file \(10 bytes\)/],
    ['header length 2^63', () => rawFile('{}', [], 2n ** 63n), /header length 9223372036854775808 runs past the end/],
    ['header length 2^64 - 1', () => rawFile('{}', [], 2n ** 64n - 1n), /header length 18446744073709551615 runs past the end/],
    ['header length 2^53 + 1 (not a double)', () => rawFile('{}', [], 2n ** 53n + 1n), /header length 9007199254740993 runs past/],
    ['invalid JSON', () => rawFile('{"w": {"dtype": "F32",', []), /header is not valid JSON/],
    ['invalid UTF-8', () => { const b = rawFile('{"\u00e9":1}'); b[10] = 0xff; return b; }, /header is not valid UTF-8/],
    ['empty header', () => rawFile(''), /header is not valid JSON/],
    ['JSON array', () => rawFile('[]'), /must be a JSON object of tensor entries but is an array/],
    ['JSON null', () => rawFile('null'), /must be a JSON object .* but is null/],
    ['JSON number', () => rawFile('42'), /must be a JSON object .* but is number 42/],
    ['entry not an object', () => rawFile({ w: [1, 2] }), /checkpoint tensor 'w': expected an object/],
    ['unknown dtype', () => rawFile({ w: entry('F31', [1], [0, 4]) }, u8(4)), /checkpoint tensor 'w': unknown dtype "F31"/],
    ['known but unsupported dtype', () => rawFile({ w: entry('I16', [2], [0, 4]) }, u8(4)), /checkpoint tensor 'w': dtype I16 is not supported/],
    ['dtype not a string', () => rawFile({ w: entry(4 as never, [1], [0, 4]) }, u8(4)), /dtype must be a string/],
    ['lowercase dtype', () => rawFile({ w: entry('f32', [1], [0, 4]) }, u8(4)), /unknown dtype "f32"/],
    ['negative shape', () => rawFile({ w: entry('U8', [-1], [0, 0]) }), /checkpoint tensor 'w': shape \[-1\] must hold non-negative integers/],
    ['non-integer shape', () => rawFile({ w: entry('U8', [1.5], [0, 1]) }, u8(1)), /shape \[1.5\] must hold non-negative integers/],
    ['string in shape', () => rawFile({ w: entry('U8', ['2'], [0, 2]) }, u8(2)), /shape \["2"\] must hold non-negative integers/],
    ['shape not an array', () => rawFile({ w: entry('U8', 2 as never, [0, 2]) }, u8(2)), /shape must be an array/],
    ['shape beyond 2^53', () => rawFile({ w: entry('U8', [2 ** 60], [0, 2]) }, u8(2)), /must hold non-negative integers/],
    ['huge shape, tiny data (no allocation, no overflow)', () => rawFile({ w: entry('F64', [2 ** 26, 2 ** 26, 2 ** 26, 2], [0, 8]) }, u8(8)), /hold 8 bytes but shape \[67108864, 67108864, 67108864, 2\] of F64 needs more than 8/],
    ['offsets out of range', () => rawFile({ w: entry('U8', [4], [0, 4]) }, u8(3)), /data_offsets \[0, 4\] run past the end of the data region \(3 bytes\)/],
    ['offsets far beyond 2^53', () => rawFile('{"w":{"dtype":"U8","shape":[1],"data_offsets":[18446744073709551615,18446744073709551616]}}', u8(1)), /data_offsets .* must be non-negative integers/],
    ['negative offset', () => rawFile({ w: entry('U8', [1], [-1, 0]) }, u8(1)), /must be non-negative integers \(found number -1\)/],
    ['three offsets', () => rawFile({ w: entry('U8', [1], [0, 1, 2]) }, u8(1)), /data_offsets must be \[begin, end\] \(found \[0, 1, 2\]\)/],
    ['begin > end', () => rawFile({ w: entry('U8', [0], [3, 2]) }, u8(3)), /data_offsets \[3, 2\] begin after they end/],
    ['overlapping offsets', () => rawFile({ a: entry('U8', [4], [0, 4]), b: entry('U8', [4], [2, 6]) }, u8(6)), /checkpoint tensor 'b': data_offsets \[2, 6\] overlap tensor 'a' at \[0, 4\]/],
    ['identical offsets (aliasing)', () => rawFile({ a: entry('U8', [4], [0, 4]), b: entry('U8', [4], [0, 4]) }, u8(4)), /overlap tensor/],
    ['empty tensor inside another one', () => rawFile({ a: entry('U8', [4], [0, 4]), z: entry('U8', [0], [2, 2]) }, u8(4)), /checkpoint tensor 'z': data_offsets \[2, 2\] overlap tensor 'a'/],
    ['gap between tensors', () => rawFile({ a: entry('U8', [2], [0, 2]), b: entry('U8', [2], [3, 5]) }, u8(5)), /checkpoint tensor 'b': data_offsets \[3, 5\] leave a gap of 1 bytes after offset 2/],
    ['gap at the start', () => rawFile({ a: entry('U8', [2], [1, 3]) }, u8(3)), /leave a gap of 1 bytes after offset 0/],
    ['size mismatch', () => rawFile({ 'rnn.weight_ih_l0': entry('F32', [10, 20], [0, 400]) }, u8(400)),
      /^checkpoint tensor 'rnn.weight_ih_l0': data_offsets \[0, 400\] hold 400 bytes but shape \[10, 20\] of F32 needs 800/],
    ['size not a multiple of the dtype', () => rawFile({ w: entry('I64', [1], [0, 7]) }, u8(7)), /hold 7 bytes but shape \[1\] of I64 needs 8/],
    ['metadata with a non-string value', () => rawFile({ __metadata__: { epochs: 3 } }), /__metadata__ 'epochs' must be a string but is number 3/],
    ['metadata not an object', () => rawFile({ __metadata__: ['a'] }), /__metadata__ must be an object of strings but is an array/],
    ['extra unknown key in an entry', () => rawFile({ w: { ...entry('U8', [1], [0, 1]), strides: [1] } }, u8(1)), /checkpoint tensor 'w': unknown key "strides"/],
    ['missing key in an entry', () => rawFile({ w: { dtype: 'U8', shape: [1] } }, u8(1)), /checkpoint tensor 'w': missing 'data_offsets'/],
    ['trailing bytes not covered', () => rawFile({ w: entry('U8', [2], [0, 2]) }, u8(3)), /data region holds 3 bytes but its tensors cover only the first 2: 1 trailing bytes/],
    ['data but no tensors', () => rawFile('{}', u8(8)), /cover only the first 0/],
  ];

  test(`${cases.length} distinct malformed files`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(15);
  });

  // BF16 is valid safetensors that rnnlm does not read; everything else breaks the format.
  test.skipIf(!python3)(needsPython('the independent Python reader refuses every one of them too'), async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'malformed-'));
    const runs = cases
      .filter(([name]) => name !== 'known but unsupported dtype')
      .map(([name, make], i) => {
        const file = path.join(sub, `case${i}.safetensors`);
        fs.writeFileSync(file, make());
        return new Promise<string | null>((resolve) => {
          const child = spawn('python3', [path.join(__dirname, '..', 'independent_safetensors.py'), file], { stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (d) => (stderr += d));
          child.on('close', (status) => resolve(status === 1 ? null : `${name}: status ${status} ${stderr}`));
        });
      });
    expect((await Promise.all(runs)).filter((r) => r !== null)).toEqual([]);
  });

  test.each(cases)('%s', (_name, make, pattern) => {
    const bytes = make();
    const message = errorOf(() => parse(bytes));
    expect(message.startsWith('ERR_CHECKPOINT: ')).toBe(true);
    expect(message.slice('ERR_CHECKPOINT: '.length)).toMatch(pattern);
  });

  test('maxHeaderBytes bounds the header, and is itself validated', () => {
    const bytes = rawFile({ w: entry('U8', [1], [0, 1]) }, [7]);
    expect(parse(bytes, { maxHeaderBytes: 1000 }).tensors.size).toBe(1);
    expect(errorOf(() => parse(bytes, { maxHeaderBytes: 10 }))).toMatch(/^ERR_CHECKPOINT: checkpoint header length \d+ exceeds the limit of 10 bytes/);
    expect(errorOf(() => parse(bytes, { maxHeaderBytes: -1 }))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(errorOf(() => parse('abc' as never))).toMatch(/^ERR_INVALID_ARGUMENT/);
  });

  test('what the format allows is accepted: padding, leading spaces, null metadata, key order, "__proto__"', () => {
    const padded = rawFile('{"b":{"shape":[1],"data_offsets":[1,2],"dtype":"U8"},"a":{"data_offsets":[0,1],"dtype":"U8","shape":[]}}   ', [5, 6]);
    const r = parse(padded);
    expect([...r.tensors.keys()]).toEqual(['a', 'b']); // data order
    expect(Array.from(r.tensors.get('b')!.data as Uint8Array)).toEqual([6]);
    expect(parse(rawFile('  {"__metadata__":null}  ')).metadata).toEqual({});
    const proto = parse(rawFile('{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', [9]));
    expect(Object.getPrototypeOf(proto.metadata)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(proto.metadata, '__proto__')?.value).toBe('x');
    expect(proto.tensors.get('__proto__')!.shape).toEqual([1]);
  });

  test('readSafetensorsFile: a missing file, a directory, a corrupt file all name the path', async () => {
    const missing = path.join(dir, 'nope', 'missing.safetensors');
    expect(await asyncErrorOf(() => readSafetensorsFile(missing))).toMatch(new RegExp(`^ERR_CHECKPOINT: checkpoint file ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} does not exist`));
    expect(await asyncErrorOf(() => readSafetensorsFile(dir))).toMatch(/^ERR_CHECKPOINT: .*is not a regular file/);
    const corrupt = path.join(dir, 'corrupt.safetensors');
    fs.writeFileSync(corrupt, rawFile({ w: entry('F32', [2], [0, 4]) }, u8(4)));
    const msg = await asyncErrorOf(() => readSafetensorsFile(corrupt));
    expect(msg).toMatch(/^ERR_CHECKPOINT: checkpoint tensor 'w': data_offsets \[0, 4\] hold 4 bytes but shape \[2\] of F32 needs 8/);
    expect(msg).toContain(corrupt);
    const tiny = path.join(dir, 'tiny.safetensors');
    fs.writeFileSync(tiny, 'abc');
    expect(await asyncErrorOf(() => readSafetensorsFile(tiny))).toMatch(/^ERR_CHECKPOINT: .*3 bytes long/);
  });
});

describe('serialize validates its input', () => {
  const f32 = (n: number) => new Float32Array(n);
  const cases: [string, () => unknown, RegExp][] = [
    ['empty name', () => serialize({ '': { dtype: 'F32', shape: [1], data: f32(1) } }), /non-empty string/],
    ['reserved name', () => serialize(new Map([['__metadata__', { dtype: 'F32', shape: [1], data: f32(1) } as SafeTensor]])), /'__metadata__' is reserved/],
    ['unknown dtype', () => serialize({ w: { dtype: 'F8_E4M3' as never, shape: [1], data: f32(1) } }), /tensor 'w': dtype must be one of/],
    ['F16 data not in a Uint16Array', () => serialize({ w: { dtype: 'F16', shape: [1], data: f32(1) as never } }), /dtype F16 needs its data in a Uint16Array \(got Float32Array\)/],
    ['data length != numel', () => serialize({ w: { dtype: 'F32', shape: [2, 3], data: f32(5) } }), /tensor 'w': shape \[2, 3\] needs 6 elements but data has 5/],
    ['scalar with no element', () => serialize({ w: { dtype: 'F32', shape: [], data: f32(0) } }), /needs 1 elements but data has 0/],
    ['data type does not match dtype', () => serialize({ w: { dtype: 'F64', shape: [1], data: f32(1) } }), /dtype F64 needs its data in a Float64Array \(got Float32Array\)/],
    ['plain array data', () => serialize({ w: { dtype: 'F32', shape: [1], data: [1] as never } }), /needs its data in a Float32Array/],
    ['negative dimension', () => serialize({ w: { dtype: 'F32', shape: [-1], data: f32(0) } }), /shape must be an array of non-negative integers/],
    ['fractional dimension', () => serialize({ w: { dtype: 'F32', shape: [1.5], data: f32(1) } }), /non-negative integers/],
    ['metadata value not a string', () => serialize({}, { epochs: 3 as never }), /metadata 'epochs' must be a string/],
    ['metadata not an object', () => serialize({}, 'x' as never), /metadata must be an object/],
    ['tensors not an object', () => serialize(null as never), /tensors must be a Map or an object/],
  ];
  test.each(cases)('%s -> ERR_INVALID_ARGUMENT', (_name, fn, pattern) => {
    expect(errorOf(fn)).toMatch(new RegExp('^ERR_INVALID_ARGUMENT: serialize: .*' + pattern.source));
  });

  test('non-finite floats -> ERR_NON_FINITE naming the tensor', () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      expect(errorOf(() => serialize({ 'decoder.bias': { dtype: 'F32', shape: [3], data: Float32Array.from([0, 1, bad]) } })))
        .toMatch(/^ERR_NON_FINITE: serialize: tensor 'decoder.bias' holds a non-finite value \((NaN|-?Infinity)\) at element 2/);
      expect(errorOf(() => serialize({ d: { dtype: 'F64', shape: [1], data: Float64Array.from([bad]) } }))).toMatch(/^ERR_NON_FINITE: .*'d'/);
    }
    // Half patterns with an all-ones exponent: F16 infinity and NaN, BF16 infinity.
    for (const [dtype, bits] of [['F16', 0x7c00], ['F16', 0xfe00], ['BF16', 0x7f80]] as const) {
      expect(errorOf(() => serialize({ h: { dtype, shape: [2], data: Uint16Array.from([0x3c00, bits]) } })))
        .toMatch(new RegExp(`^ERR_NON_FINITE: serialize: tensor 'h' holds a non-finite ${dtype} value \\(0x${bits.toString(16)}\\) at element 1`));
    }
  });

  test('typed-array views are written from their own window only', () => {
    const big = Float32Array.from([9, 1, 2, 9]);
    const r = parse(serialize({ w: { dtype: 'F32', shape: [2], data: big.subarray(1, 3) } }));
    expect(Array.from(r.tensors.get('w')!.data as Float32Array)).toEqual([1, 2]);
  });
});

describe('writeFileAtomic', () => {
  test('writes, replaces, and leaves no temporary file behind', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const file = path.join(sub, 'out.bin');
    await writeFileAtomic(file, Uint8Array.from([1, 2, 3]));
    expect(Array.from(fs.readFileSync(file))).toEqual([1, 2, 3]);
    fs.chmodSync(file, 0o640);
    await writeFileAtomic(file, 'héllo');
    expect(fs.readFileSync(file, 'utf8')).toBe('héllo');
    if (process.platform !== 'win32') expect(fs.statSync(file).mode & 0o777).toBe(0o640);
    await Promise.all([1, 2, 3].map((i) => writeFileAtomic(path.join(sub, `p${i}`), String(i))));
    expect(fs.readdirSync(sub).sort()).toEqual(['out.bin', 'p1', 'p2', 'p3']);
  });

  test('a missing directory -> ERR_CHECKPOINT, and nothing is created', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const file = path.join(sub, 'does-not-exist', 'out.bin');
    const msg = await asyncErrorOf(() => writeFileAtomic(file, 'x'));
    expect(msg.startsWith(`ERR_CHECKPOINT: cannot write ${file}: `)).toBe(true);
    expect(msg).toMatch(/ENOENT/);
    expect(fs.readdirSync(sub)).toEqual([]);
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  test('a directory at the path -> ERR_CHECKPOINT; no temporary file is left, the directory is kept', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const target = path.join(sub, 'is-a-dir');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'keep'), 'k');
    const msg = await asyncErrorOf(() => writeFileAtomic(target, 'x'));
    expect(msg).toMatch(/^ERR_CHECKPOINT: cannot write .*is-a-dir: /);
    expect(fs.readdirSync(sub)).toEqual(['is-a-dir']);
    expect(fs.readdirSync(target)).toEqual(['keep']);
  });

  test('moveFileAtomic: renames a file, copies through a symlink (which stays), writes through one at the destination', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const at = (f: string) => path.join(sub, f);
    fs.writeFileSync(at('a'), 'A');
    expect(await moveFileAtomic(at('a'), at('b'))).toBe(true);
    expect(fs.existsSync(at('a'))).toBe(false);
    expect(fs.readFileSync(at('b'), 'utf8')).toBe('A');
    expect(await moveFileAtomic(at('a'), at('b'))).toBe(false); // nothing to move: nothing touched
    expect(fs.readFileSync(at('b'), 'utf8')).toBe('A');
    fs.symlinkSync('b', at('link-b'));
    expect(await moveFileAtomic(at('link-b'), at('c'))).toBe(true);
    expect(fs.lstatSync(at('link-b')).isSymbolicLink() && fs.readFileSync(at('b'), 'utf8') === 'A').toBe(true);
    expect(fs.readFileSync(at('c'), 'utf8')).toBe('A');
    fs.writeFileSync(at('d'), 'D');
    fs.symlinkSync('e', at('link-e')); // dangling: the move creates e
    expect(await moveFileAtomic(at('d'), at('link-e'))).toBe(true);
    expect(fs.lstatSync(at('link-e')).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(at('e'), 'utf8')).toBe('D');
    execFileSync('mkfifo', [at('fifo')]);
    expect(await asyncErrorOf(() => moveFileAtomic(at('c'), at('fifo')))).toMatch(/^ERR_CHECKPOINT: cannot write .*fifo: it is a FIFO/);
    expect(fs.lstatSync(at('fifo')).isFIFO() && fs.readFileSync(at('c'), 'utf8') === 'A').toBe(true);
  });

  test('removeFile: a file, the file behind a symlink (the link stays), nothing; a FIFO is refused and kept', async () => {
    const sub = fs.mkdtempSync(path.join(dir, 'atomic-'));
    const at = (f: string) => path.join(sub, f);
    fs.writeFileSync(at('a'), 'A');
    fs.writeFileSync(at('b'), 'B');
    fs.symlinkSync('b', at('link-b'));
    expect(await removeFile(at('a'))).toBe(true);
    expect(await removeFile(at('a'))).toBe(false);
    expect(await removeFile(at('link-b'))).toBe(true);
    expect(fs.readdirSync(sub)).toEqual(['link-b']);
    execFileSync('mkfifo', [at('fifo')]);
    expect(await asyncErrorOf(() => removeFile(at('fifo')))).toMatch(/^ERR_CHECKPOINT: cannot remove .*fifo: it is a FIFO \(named pipe\), not a regular file; rnnlm removes only regular files/);
    expect(fs.lstatSync(at('fifo')).isFIFO()).toBe(true);
  });

  test('bad arguments -> ERR_INVALID_ARGUMENT', async () => {
    expect(await asyncErrorOf(() => writeFileAtomic('', 'x'))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(await asyncErrorOf(() => moveFileAtomic('', 'x'))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(await asyncErrorOf(() => removeFile(undefined as never))).toMatch(/^ERR_INVALID_ARGUMENT/);
    expect(await asyncErrorOf(() => writeFileAtomic(path.join(dir, 'y'), 5 as never))).toMatch(/^ERR_INVALID_ARGUMENT/);
  });

  test('writeSafetensorsFile refuses bad tensors before touching the file', async () => {
    const file = path.join(dir, 'keep.safetensors');
    await writeSafetensorsFile(file, { a: { dtype: 'U8', shape: [1], data: Uint8Array.from([3]) } });
    const before = fs.readFileSync(file);
    expect(await asyncErrorOf(() => writeSafetensorsFile(file, { a: { dtype: 'F32', shape: [1], data: Float32Array.from([NaN]) } }))).toMatch(/^ERR_NON_FINITE/);
    expect(fs.readFileSync(file).equals(before)).toBe(true);
  });
});
