/**
 * The safetensors file format (https://github.com/huggingface/safetensors), read and written
 * with full validation (docs/ARCHITECTURE.md, "Checkpoints": reads validate everything before use).
 *
 * Layout: u64 little-endian N; N bytes of UTF-8 JSON (padded with trailing spaces); the data
 * region. The JSON maps each tensor name to { dtype, shape, data_offsets: [begin, end] }
 * (offsets relative to the data region) and may hold "__metadata__": { string: string }.
 * The tensors together cover the data region exactly: no holes, no overlaps.
 */
import { promises as fs } from 'node:fs';
import { RnnlmError } from '../errors';
import { writeFileAtomic } from './atomic';
import { halfFinite } from './half';

/** Element types this reader and writer support. */
export type SafeDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I32' | 'I64' | 'U8' | 'I8';

/** F16 and BF16 data are their 16-bit patterns (lib/io/half.ts converts). */
export type SafeTensorData = Float32Array | Float64Array | Uint16Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export interface SafeTensor {
  dtype: SafeDType;
  /** Row-major dimensions; [] is a scalar (one element); a 0 dimension means no elements. */
  shape: number[];
  /** Exactly product(shape) elements, of the typed array that matches `dtype`. */
  data: SafeTensorData;
}

export interface ParseOptions {
  /** Largest header accepted, in bytes (default 100 MiB), against hostile or corrupt files. */
  maxHeaderBytes?: number;
}

export interface ParsedSafetensors {
  metadata: Record<string, string>;
  /** In the order of the tensors' data in the file (= the order they were serialised in). */
  tensors: Map<string, SafeTensor>;
}

const DEFAULT_MAX_HEADER_BYTES = 100 * 1024 * 1024;
const METADATA_KEY = '__metadata__';
const ENTRY_KEYS = ['dtype', 'shape', 'data_offsets'] as const;

interface DTypeInfo {
  size: number;
  ctor: { new (length: number): SafeTensorData; readonly name: string };
  float: boolean;
}

const DTYPES: Record<SafeDType, DTypeInfo> = {
  F32: { size: 4, ctor: Float32Array, float: true },
  F64: { size: 8, ctor: Float64Array, float: true },
  F16: { size: 2, ctor: Uint16Array, float: false },
  BF16: { size: 2, ctor: Uint16Array, float: false },
  I32: { size: 4, ctor: Int32Array, float: false },
  I64: { size: 8, ctor: BigInt64Array, float: false },
  U8: { size: 1, ctor: Uint8Array, float: false },
  I8: { size: 1, ctor: Int8Array, float: false },
};

/** Valid safetensors dtypes that this library does not read. */
const OTHER_KNOWN_DTYPES = new Set([
  'BOOL', 'I16', 'U16', 'U32', 'U64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0',
  'F4', 'F6_E2M3', 'F6_E3M2', 'C64',
]);

function isSafeDType(x: unknown): x is SafeDType {
  return typeof x === 'string' && Object.prototype.hasOwnProperty.call(DTYPES, x);
}

let endiannessChecked = false;
/** Typed arrays use the host's byte order; the file is little-endian. Checked once. */
function assertLittleEndian(): void {
  if (endiannessChecked) return;
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new RnnlmError('ERR_NATIVE', 'safetensors I/O needs a little-endian host; this one is big-endian');
  }
  endiannessChecked = true;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  if (typeof x === 'string') return `the string ${JSON.stringify(x.length > 40 ? x.slice(0, 40) + '…' : x)}`;
  if (typeof x === 'object') return 'an object';
  return `${typeof x} ${String(x)}`;
}

function quoteName(name: string): string {
  return `'${name.length > 200 ? name.slice(0, 200) + '…' : name}'`;
}

function fmtShape(shape: readonly unknown[]): string {
  return `[${shape.map((d) => (typeof d === 'number' ? String(d) : JSON.stringify(d))).join(', ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Writing

function invalid(message: string): RnnlmError {
  return new RnnlmError('ERR_INVALID_ARGUMENT', message);
}

function jsonString(s: string): string {
  return JSON.stringify(s);
}

/**
 * Serialises tensors (in their insertion order; note that a plain object lists integer-like
 * keys first, use a Map to control the order fully) and optional string metadata into one
 * safetensors file. The header is padded with spaces so the data region starts 8-byte aligned.
 * Throws ERR_INVALID_ARGUMENT for malformed input and ERR_NON_FINITE for NaN/Infinity data.
 */
export function serialize(
  tensors: Record<string, SafeTensor> | Map<string, SafeTensor>,
  metadata?: Record<string, string>,
): Buffer {
  assertLittleEndian();
  let entries: [string, SafeTensor][];
  if (tensors instanceof Map) entries = [...tensors.entries()];
  else if (isPlainObject(tensors)) entries = Object.entries(tensors);
  else throw invalid(`serialize: tensors must be a Map or an object of name -> tensor (got ${describe(tensors)})`);

  const headerParts: string[] = [];
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) {
      throw invalid(`serialize: metadata must be an object of string values (got ${describe(metadata)})`);
    }
    const parts: string[] = [];
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') {
        throw invalid(`serialize: metadata '${k}' must be a string (got ${describe(v)}); JSON.stringify structured values`);
      }
      parts.push(`${jsonString(k)}:${jsonString(v)}`);
    }
    headerParts.push(`${jsonString(METADATA_KEY)}:{${parts.join(',')}}`);
  }

  let offset = 0;
  const placed: { data: SafeTensorData; begin: number }[] = [];
  for (const [name, t] of entries) {
    if (typeof name !== 'string' || name.length === 0) {
      throw invalid('serialize: a tensor name must be a non-empty string');
    }
    if (name === METADATA_KEY) {
      throw invalid(`serialize: '${METADATA_KEY}' is reserved for metadata and cannot name a tensor; pass metadata as the second argument`);
    }
    const where = `serialize: tensor ${quoteName(name)}`;
    if (!isPlainObject(t)) throw invalid(`${where} must be { dtype, shape, data } (got ${describe(t)})`);
    if (!isSafeDType(t.dtype)) {
      throw invalid(`${where}: dtype must be one of ${Object.keys(DTYPES).join(', ')} (got ${describe(t.dtype)})`);
    }
    const info = DTYPES[t.dtype];
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(`${where}: shape must be an array of non-negative integers (got ${Array.isArray(t.shape) ? fmtShape(t.shape) : describe(t.shape)})`);
    }
    let numel = 1;
    for (const d of t.shape) numel *= d;
    if (!Number.isSafeInteger(numel)) throw invalid(`${where}: shape ${fmtShape(t.shape)} has too many elements`);
    if (!(t.data instanceof info.ctor)) {
      const got = ArrayBuffer.isView(t.data) ? t.data.constructor.name : describe(t.data);
      throw invalid(`${where}: dtype ${t.dtype} needs its data in a ${info.ctor.name} (got ${got})`);
    }
    if (t.data.length !== numel) {
      throw invalid(`${where}: shape ${fmtShape(t.shape)} needs ${numel} elements but data has ${t.data.length}`);
    }
    if (t.dtype === 'F16' || t.dtype === 'BF16') {
      const a = t.data as Uint16Array, dt = t.dtype;
      const i = a.findIndex((h) => !halfFinite(dt, h));
      if (i >= 0) throw new RnnlmError('ERR_NON_FINITE', `serialize: tensor ${quoteName(name)} holds a non-finite ${dt} value (0x${a[i].toString(16)}) at element ${i}; a checkpoint must hold finite numbers`);
    }
    if (info.float) {
      const a = t.data as Float32Array | Float64Array;
      for (let i = 0; i < a.length; i++) {
        if (!Number.isFinite(a[i])) {
          throw new RnnlmError('ERR_NON_FINITE', `serialize: tensor ${quoteName(name)} holds a non-finite value (${a[i]}) at element ${i}; a checkpoint must hold finite numbers (lower the learning rate or clip gradients)`);
        }
      }
    }
    const bytes = numel * info.size;
    headerParts.push(
      `${jsonString(name)}:{"dtype":${jsonString(t.dtype)},"shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`,
    );
    placed.push({ data: t.data, begin: offset });
    offset += bytes;
  }

  const json = Buffer.from(`{${headerParts.join(',')}}`, 'utf8');
  const headerLength = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const dataStart = 8 + headerLength;
  const total = dataStart + offset;
  if (!Number.isSafeInteger(total) || total > 2 ** 53) throw invalid('serialize: the tensors are too large for one buffer');
  let out: Buffer;
  try {
    out = Buffer.alloc(total);
  } catch (e) {
    throw invalid(`serialize: cannot allocate ${total} bytes for the file: ${(e as Error).message}`);
  }
  out.writeBigUInt64LE(BigInt(headerLength), 0);
  json.copy(out, 8);
  out.fill(0x20, 8 + json.length, dataStart);
  for (const { data, begin } of placed) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), dataStart + begin);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Reading

function bad(message: string): RnnlmError {
  return new RnnlmError('ERR_CHECKPOINT', message);
}

const CORRUPT_HINT = 'the file is truncated, corrupted or not a safetensors file; save it again';

interface Entry {
  name: string;
  dtype: SafeDType;
  shape: number[];
  numel: number;
  begin: number;
  end: number;
}

/** Validates one header entry against the data region's length; allocates nothing big. */
function validateEntry(name: string, raw: unknown, dataLength: number): Entry {
  const where = `checkpoint tensor ${quoteName(name)}`;
  if (!isPlainObject(raw)) throw bad(`${where}: expected an object { dtype, shape, data_offsets } but found ${describe(raw)}; ${CORRUPT_HINT}`);
  for (const key of Object.keys(raw)) {
    if (!(ENTRY_KEYS as readonly string[]).includes(key)) {
      throw bad(`${where}: unknown key ${JSON.stringify(key)} (an entry holds exactly dtype, shape and data_offsets); ${CORRUPT_HINT}`);
    }
  }
  for (const key of ENTRY_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(raw, key)) throw bad(`${where}: missing '${key}'; ${CORRUPT_HINT}`);
  }
  const { dtype, shape, data_offsets: offsets } = raw;

  if (typeof dtype !== 'string') throw bad(`${where}: dtype must be a string (found ${describe(dtype)}); ${CORRUPT_HINT}`);
  if (!isSafeDType(dtype)) {
    if (OTHER_KNOWN_DTYPES.has(dtype)) {
      throw bad(`${where}: dtype ${dtype} is not supported (supported: ${Object.keys(DTYPES).join(', ')}); convert the checkpoint to float32`);
    }
    throw bad(`${where}: unknown dtype ${JSON.stringify(dtype.length > 40 ? dtype.slice(0, 40) + '…' : dtype)} (supported: ${Object.keys(DTYPES).join(', ')}); ${CORRUPT_HINT}`);
  }
  const size = DTYPES[dtype].size;

  if (!Array.isArray(shape)) throw bad(`${where}: shape must be an array of non-negative integers (found ${describe(shape)}); ${CORRUPT_HINT}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw bad(`${where}: shape ${fmtShape(shape)} must hold non-negative integers (found ${describe(d)}); ${CORRUPT_HINT}`);
    }
  }
  const dims = shape as number[];

  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw bad(`${where}: data_offsets must be [begin, end] (found ${Array.isArray(offsets) ? fmtShape(offsets) : describe(offsets)}); ${CORRUPT_HINT}`);
  }
  for (const o of offsets) {
    if (typeof o !== 'number' || !Number.isSafeInteger(o) || o < 0) {
      throw bad(`${where}: data_offsets ${fmtShape(offsets)} must be non-negative integers (found ${describe(o)}); ${CORRUPT_HINT}`);
    }
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw bad(`${where}: data_offsets [${begin}, ${end}] begin after they end; ${CORRUPT_HINT}`);
  if (end > dataLength) {
    throw bad(`${where}: data_offsets [${begin}, ${end}] run past the end of the data region (${dataLength} bytes); ${CORRUPT_HINT}`);
  }

  // Element count, computed exactly while it fits a double's integers and cut off beyond:
  // a huge shape neither overflows nor reaches an allocation, since its byte size cannot
  // match the offsets (which lie inside the file) and that is checked first.
  const held = end - begin;
  const maxElements = Math.floor(Number.MAX_SAFE_INTEGER / size);
  let numel = 1;
  let tooMany = false;
  if (dims.includes(0)) numel = 0;
  else {
    for (const d of dims) {
      numel *= d;
      if (numel > maxElements) { tooMany = true; break; }
    }
  }
  if (tooMany || numel * size !== held) {
    const needs = tooMany ? `more than ${held}` : String(numel * size);
    throw bad(`${where}: data_offsets [${begin}, ${end}] hold ${held} bytes but shape ${fmtShape(dims)} of ${dtype} needs ${needs}; ${CORRUPT_HINT}`);
  }
  return { name, dtype, shape: [...dims], numel, begin, end };
}

/**
 * Parses a safetensors file held in memory. Every part of the header is validated before any
 * tensor data is read; any problem throws RnnlmError('ERR_CHECKPOINT') naming the tensor and
 * what was wrong. The tensors returned are fresh, aligned copies (the input may be unaligned
 * and may be reused by the caller); they are ordered by their position in the data region.
 */
export function parse(bytes: Uint8Array, options?: ParseOptions): ParsedSafetensors {
  assertLittleEndian();
  if (!(bytes instanceof Uint8Array)) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `parse: bytes must be a Uint8Array or Buffer (got ${describe(bytes)})`);
  }
  const maxHeaderBytes = options?.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  if (!Number.isSafeInteger(maxHeaderBytes) || maxHeaderBytes < 2) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `parse: maxHeaderBytes must be an integer >= 2 (got ${String(maxHeaderBytes)})`);
  }

  if (bytes.length < 8) {
    throw bad(`checkpoint is ${bytes.length} bytes long, too short for the 8-byte header length of a safetensors file; ${CORRUPT_HINT}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength64 = view.getBigUint64(0, true);
  const available = BigInt(bytes.length - 8);
  if (headerLength64 > available) {
    throw bad(`checkpoint header length ${headerLength64} runs past the end of the file (${bytes.length} bytes); ${CORRUPT_HINT}`);
  }
  if (headerLength64 > BigInt(maxHeaderBytes)) {
    throw bad(`checkpoint header length ${headerLength64} exceeds the limit of ${maxHeaderBytes} bytes; raise maxHeaderBytes if the file is trusted`);
  }
  const headerLength = Number(headerLength64);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;

  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw bad(`checkpoint header is not valid UTF-8; ${CORRUPT_HINT}`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw bad(`checkpoint header is not valid JSON (${(e as Error).message}); ${CORRUPT_HINT}`);
  }
  if (!isPlainObject(header)) {
    throw bad(`checkpoint header must be a JSON object of tensor entries but is ${describe(header)}; ${CORRUPT_HINT}`);
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      // JSON null is read as "no metadata", as the reference implementation does.
      if (raw === null) continue;
      if (!isPlainObject(raw)) throw bad(`checkpoint ${METADATA_KEY} must be an object of strings but is ${describe(raw)}; ${CORRUPT_HINT}`);
      for (const [k, v] of Object.entries(raw)) {
        if (typeof v !== 'string') {
          throw bad(`checkpoint ${METADATA_KEY} '${k}' must be a string but is ${describe(v)}; ${CORRUPT_HINT}`);
        }
        // defineProperty: a key such as "__proto__" stays an ordinary own property.
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    entries.push(validateEntry(name, raw, dataLength));
  }

  // Coverage: sorted by position, each tensor begins where the previous one ended, and the
  // last one ends at the end of the file.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: Entry | undefined;
  for (const e of entries) {
    if (e.begin < cursor) {
      throw bad(`checkpoint tensor ${quoteName(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${quoteName(previous!.name)} at [${previous!.begin}, ${previous!.end}]; ${CORRUPT_HINT}`);
    }
    if (e.begin > cursor) {
      throw bad(`checkpoint tensor ${quoteName(e.name)}: data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - cursor} bytes after offset ${cursor} of the data region; ${CORRUPT_HINT}`);
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataLength) {
    throw bad(`checkpoint data region holds ${dataLength} bytes but its tensors cover only the first ${cursor}: ${dataLength - cursor} trailing bytes belong to no tensor; ${CORRUPT_HINT}`);
  }

  // Everything is consistent: copy the data out into aligned arrays (total = the data region).
  const tensors = new Map<string, SafeTensor>();
  for (const e of entries) {
    const info = DTYPES[e.dtype];
    const data = new info.ctor(e.numel);
    new Uint8Array(data.buffer, data.byteOffset, data.byteLength).set(
      bytes.subarray(dataStart + e.begin, dataStart + e.end),
    );
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return { metadata, tensors };
}

// ---------------------------------------------------------------------------------------------
// Files

/** Reads and parses a safetensors file; a missing or unreadable file is ERR_CHECKPOINT too. */
export async function readSafetensorsFile(path: string, options?: ParseOptions): Promise<ParsedSafetensors> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `readSafetensorsFile: path must be a non-empty string (got ${describe(path)})`);
  }
  let stat;
  try {
    stat = await fs.stat(path);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw bad(`checkpoint file ${path} does not exist; check the path (relative paths start at ${process.cwd()})`);
    }
    throw bad(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  if (!stat.isFile()) throw bad(`checkpoint ${path} is not a regular file`);
  if (stat.size < 8) {
    throw bad(`checkpoint ${path} is ${stat.size} bytes long, too short for a safetensors file; ${CORRUPT_HINT}`);
  }
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(path);
  } catch (e) {
    throw bad(`cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  try {
    return parse(bytes, options);
  } catch (e) {
    if (e instanceof RnnlmError && e.code === 'ERR_CHECKPOINT') throw bad(`${e.message} (in ${path})`);
    throw e;
  }
}

/** Serialises tensors and metadata (see `serialize`) and writes the file atomically. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, SafeTensor> | Map<string, SafeTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  const bytes = serialize(tensors, metadata);
  await writeFileAtomic(path, bytes);
}
