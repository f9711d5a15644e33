/**
 * Validation of user options (the lovell/sharp way): every option is checked in
 * TypeScript before any work starts, and a wrong type, an out-of-range value or an
 * unknown key throws ERR_INVALID_ARGUMENT naming the option, what it got and what
 * it expects.
 */
import { invalidArgument } from './errors';

/** What an option got, as an error shows it (a long string cut: the message stays readable). */
export function show(v: unknown): string {
  if (typeof v === 'string') return v.length > 80 ? `'${v.slice(0, 80)}…' (${v.length.toLocaleString('en-US')} characters)` : `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return String(v);
}

/** Reads the options object `obj` of `where` (e.g. 'fit'), refusing keys not in `known`. */
export class Options {
  private readonly obj: Record<string, unknown>;
  constructor(
    readonly where: string,
    obj: unknown,
    known: readonly string[],
  ) {
    if (obj === undefined || obj === null) obj = {};
    if (typeof obj !== 'object' || Array.isArray(obj)) {
      throw invalidArgument(`${where}: options must be an object (got ${show(obj)})`);
    }
    this.obj = obj as Record<string, unknown>;
    for (const key of Object.keys(this.obj)) {
      if (!known.includes(key) && this.obj[key] !== undefined) {
        throw invalidArgument(`${where}: unknown option '${key}'; known options: ${known.join(', ')}`);
      }
    }
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined;
  }

  raw(key: string): unknown {
    return this.obj[key];
  }

  private fail(key: string, expected: string): never {
    throw invalidArgument(`${this.where}: ${key} must be ${expected} (got ${show(this.obj[key])})`);
  }

  number(key: string, def: number, { min = -Infinity, max = Infinity, exclusiveMin = false } = {}): number {
    const v = this.obj[key];
    if (v === undefined) return def;
    const range = `${exclusiveMin ? '>' : '>='} ${min}${max < Infinity ? ` and <= ${max}` : ''}`;
    if (typeof v !== 'number' || !Number.isFinite(v) || (exclusiveMin ? v <= min : v < min) || v > max) {
      this.fail(key, `a finite number ${min > -Infinity ? range : ''}`.trim());
    }
    return v;
  }

  optionalNumber(key: string, limits: { min?: number; max?: number; exclusiveMin?: boolean } = {}): number | undefined {
    return this.has(key) ? this.number(key, 0, limits) : undefined;
  }

  integer(key: string, def: number, { min = -Infinity, max = Infinity } = {}): number {
    const v = this.obj[key];
    if (v === undefined) return def;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      this.fail(key, `an integer${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` and <= ${max}` : ''}`);
    }
    return v;
  }

  optionalInteger(key: string, limits: { min?: number; max?: number } = {}): number | undefined {
    return this.has(key) ? this.integer(key, 0, limits) : undefined;
  }

  boolean(key: string, def: boolean): boolean {
    const v = this.obj[key];
    if (v === undefined) return def;
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  oneOf<T extends string>(key: string, def: T, values: readonly T[]): T {
    const v = this.obj[key];
    if (v === undefined) return def;
    if (typeof v !== 'string' || !values.includes(v as T)) this.fail(key, `one of ${values.map((x) => `'${x}'`).join(', ')}`);
    return v as T;
  }

  string(key: string, def?: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined) return def;
    if (typeof v !== 'string' || v.length === 0) this.fail(key, 'a non-empty string');
    return v;
  }

  func<F extends (...args: never[]) => unknown>(key: string): F | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'function') this.fail(key, 'a function');
    return v as F;
  }

  /** A nested options object. */
  nested(key: string, known: readonly string[]): Options | undefined {
    const v = this.obj[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'an object');
    return new Options(`${this.where}: ${key}`, v, known);
  }
}

/** The signal among a call's options, if it is one (checked properly where the options are parsed). */
export function signalIn(options: unknown): AbortSignal | undefined {
  const v = typeof options === 'object' && options !== null ? (options as { signal?: unknown }).signal : undefined;
  return v instanceof AbortSignal ? v : undefined;
}

/** The signal option of every inference call. */
export function signalOf(where: string, v: unknown): AbortSignal | undefined {
  if (v === undefined) return undefined;
  if (!(v instanceof AbortSignal)) throw invalidArgument(`${where}: signal must be an AbortSignal`);
  return v;
}
