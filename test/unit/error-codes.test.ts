// One list of error codes: the TypeScript codes (lib/errors.ts) are the strings the native
// backends give their errors (native/common/status.h: enum Code and codeName), read from the
// header's text, so that a code added or renamed on one side only fails here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, test } from 'vitest';
import { ERROR_CODES } from '../../lib/errors';

const header = readFileSync(join(__dirname, '..', '..', 'native', 'common', 'status.h'), 'utf8').replace(/\/\/[^\n]*/g, '');

/** The members of `enum class Code`, in order. */
function enumMembers(): string[] {
  const body = /enum\s+class\s+Code\s*(?::\s*\w+\s*)?\{([^}]*)\}/.exec(header);
  expect(body, 'enum class Code in status.h').not.toBeNull();
  return body![1].split(',').map((m) => m.trim().replace(/\s*=.*$/, '')).filter(Boolean);
}

/** codeName's cases: enum member -> the string it returns, and its fallback return. */
function codeNames(): { cases: [string, string][]; fallback: string } {
  const fn = /codeName\s*\(\s*Code\s+\w+\s*\)\s*\{([\s\S]*?)\n\}/.exec(header);
  expect(fn, 'codeName(Code) in status.h').not.toBeNull();
  const cases = [...fn![1].matchAll(/case\s+Code::(\w+)\s*:\s*return\s+"([^"]*)"\s*;/g)].map((m) => [m[1], m[2]] as [string, string]);
  const after = fn![1].slice(fn![1].lastIndexOf('}'));
  const fallback = /return\s+"([^"]*)"/.exec(after);
  expect(fallback, "codeName's return after the switch").not.toBeNull();
  return { cases, fallback: fallback![1] };
}

test('the native enum Code and codeName give exactly the TypeScript error codes, in order', () => {
  const members = enumMembers();
  const { cases, fallback } = codeNames();
  expect(members.length).toBeGreaterThan(0);
  // Every member is named once by codeName, and nothing else is.
  expect(cases.map(([m]) => m).sort()).toEqual([...members].sort());
  const name = new Map(cases);
  expect(members.map((m) => name.get(m))).toEqual([...ERROR_CODES]);
  expect(ERROR_CODES).toContain(fallback);
});
