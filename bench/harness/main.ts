/**
 * The entry of a bench script: its options parsed (a bad one: the message, exit 2), then the run
 * (exit 1 when a run failed, 0 otherwise), naming the report it wrote.
 */
export function benchMain<O extends { json?: string }>(name: string, options: () => O, run: (o: O) => Promise<{ ok: boolean }>): void {
  let o: O;
  try {
    o = options();
  } catch (e) {
    console.error(`${name}: ${(e as Error).message}`);
    process.exit(2);
  }
  run(o).then(
    ({ ok }) => {
      if (o.json) console.error(`report: ${o.json}`);
      process.exitCode = ok ? 0 : 1;
    },
    (e: unknown) => {
      console.error(e);
      process.exitCode = 1;
    },
  );
}

/** A --flag's number of seconds (> 0), or undefined when it is not given. */
export function seconds(flag: string, x?: string): number | undefined {
  if (x === undefined) return undefined;
  const n = Number(x);
  if (!(n > 0)) throw new Error(`--${flag} must be a number of seconds > 0 (got ${x})`);
  return n;
}
