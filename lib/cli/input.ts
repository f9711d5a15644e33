/**
 * The files the CLI reads and writes, checked before any work: text must be UTF-8 (or read
 * lossily when asked), and --out must be a file in a writable directory.
 */
import { isUtf8 } from 'node:buffer';
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { invalidArgument } from '../errors';

/** Bytes of `b` outside any well-formed UTF-8 sequence (RFC 3629), and the offset of the first. */
function invalidUtf8(b: Uint8Array): { count: number; first: number } {
  let count = 0, first = -1;
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    // The second byte's range rules out overlong forms, surrogates and code points above U+10FFFF.
    const lo = c === 0xe0 ? 0xa0 : c === 0xf0 ? 0x90 : 0x80, hi = c === 0xed ? 0x9f : c === 0xf4 ? 0x8f : 0xbf;
    let ok = n === 1 || (n > 1 && b[i + 1] >= lo && b[i + 1] <= hi);
    for (let k = 2; ok && k < n; k++) ok = b[i + k] >= 0x80 && b[i + k] <= 0xbf;
    if (ok) {
      i += n;
    } else {
      if (first < 0) first = i;
      count++;
      i++;
    }
  }
  return { count, first };
}

/**
 * A text file as UTF-8. Bytes that are not UTF-8 (a Latin-1 or binary file) would silently
 * become U+FFFD and train the model on garbage: they are refused, or with `lossy` replaced
 * with a warning that counts them.
 */
export function readText(path: string, lossy: boolean): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw invalidArgument(`cannot read ${path}: ${(e as Error).message}`);
  }
  if (!isUtf8(bytes)) {
    const { count, first } = invalidUtf8(bytes);
    const what = `${count} ${count === 1 ? 'byte is' : 'bytes are'} not valid UTF-8 (the first at byte ${first})`;
    if (!lossy) throw invalidArgument(`${path} is not UTF-8 text: ${what}; convert it (e.g. iconv -f latin1 -t utf-8) or pass --lossy-utf8 to read them as U+FFFD`);
    console.error(`rnnlm: warning: ${path}: ${what}; read as U+FFFD (--lossy-utf8)`);
  }
  return bytes.toString('utf8');
}

/** --out must name a file in a writable directory: checked before any work, not found after an epoch. */
export function checkOut(out: string): void {
  const dir = dirname(resolve(out));
  const bad = (why: string) => invalidArgument(`--out ${out}: ${why}`);
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw bad((e as NodeJS.ErrnoException).code === 'ENOENT' ? `the directory ${dir} does not exist; create it first` : `cannot use the directory ${dir}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) throw bad(`${dir} is not a directory`);
  try {
    accessSync(dir, fsConstants.W_OK);
  } catch {
    throw bad(`the directory ${dir} is not writable`);
  }
  if (statSync(out, { throwIfNoEntry: false })?.isDirectory()) throw bad(`is a directory; give a file path such as ${join(out, 'model.safetensors')}`);
}
