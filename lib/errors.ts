/**
 * The stable codes of every error rnnlm throws (docs/ARCHITECTURE.md, "Errors"), in the order
 * of the native enum rnnlm::Code, whose codeName() gives the same strings
 * (native/common/status.h; test/unit/error-codes.test.ts checks that the two agree).
 */
export const ERROR_CODES = [
  'ERR_INVALID_ARGUMENT',
  'ERR_VOCAB',
  'ERR_CHECKPOINT',
  'ERR_CUDA_UNAVAILABLE',
  'ERR_OUT_OF_MEMORY',
  'ERR_NON_FINITE',
  'ERR_DISPOSED',
  'ERR_BUSY',
  'ERR_NATIVE',
] as const;

/** One of {@link ERROR_CODES}. */
export type RnnlmErrorCode = (typeof ERROR_CODES)[number];

/**
 * The one error class of rnnlm, from TypeScript and from the native backends alike
 * (the addons construct it directly). `code` is stable; `message` says what was
 * wrong, what was expected and how to fix it.
 */
export class RnnlmError extends Error {
  readonly code: RnnlmErrorCode;
  constructor(code: RnnlmErrorCode, message: string) {
    super(message);
    this.name = 'RnnlmError';
    this.code = code;
  }
}

export function invalidArgument(message: string): RnnlmError {
  return new RnnlmError('ERR_INVALID_ARGUMENT', message);
}

/** "1 token", "2 tokens": a count with its noun. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
