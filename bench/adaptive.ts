// npm run bench:adaptive — full vs adaptive softmax on a 2 x 200 LSTM over token ids at V = 10,000,
// 33,278, 100,000 and 267,735 (bench/harness/adaptive.ts): training tokens/s at batch 20 x 35,
// generation tokens/s at batch 1, the backend's and the process's peak memory, each (V, softmax)
// in its own process, full and adaptive back to back; progress on stderr, the report as JSON
// (default bench/results/adaptive-cpu-2core.json; `npm run bench:render` puts it in the README).
//   --sizes 10000,33278 (a subset of the plan), --min-seconds S (timed training per
//   configuration, 20), --gen-seconds S (5), --budget S (a configuration's process, 300),
//   --quick (vocabularies of 1,000 and 3,000, short timings; writes no JSON unless --json), --json FILE
// Exits 1 if a run failed or was stopped at its budget; targets missed are figures, not failures.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchMain, seconds } from './harness/main';
import { planSizes } from './harness/adaptive';
import { runAdaptiveBench } from './harness/adaptive-run';

function options() {
  const { values: v } = parseArgs({
    options: {
      sizes: { type: 'string' }, 'min-seconds': { type: 'string' }, 'gen-seconds': { type: 'string' }, budget: { type: 'string' },
      quick: { type: 'boolean' }, json: { type: 'string' },
    },
    strict: true,
  });
  const sizes = v.sizes?.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n) || n < 2) throw new Error(`--sizes takes vocabulary sizes (got ${s})`);
    return n;
  });
  if (sizes) planSizes(v.quick ?? false, sizes);
  return {
    quick: v.quick ?? false,
    sizes,
    minSeconds: seconds('min-seconds', v['min-seconds']),
    genSeconds: seconds('gen-seconds', v['gen-seconds']),
    budget: seconds('budget', v.budget),
    json: v.json ?? (v.quick ? undefined : join(__dirname, 'results', 'adaptive-cpu-2core.json')),
  };
}

benchMain('bench:adaptive', options, runAdaptiveBench);
