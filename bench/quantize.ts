// npm run bench:quantize — float32 against int8 inference (model.quantize('int8')) on two trained
// models, zaremba-small's sizes on Brown and char-lstm's on Tiny Shakespeare (bench/harness/
// quantize-models.ts trains them for --train-minutes and caches them in bench/.cache), beside
// PyTorch's quantize_dynamic of the same weights (bench/pytorch_quantized.py, Debian's python3-torch):
// batch-1 generation tokens/s, predictNext latency, evaluate tokens/s and perplexity, file sizes.
// The report as JSON (default bench/results/quantize-cpu-2core.json); progress on stderr.
//   --train-minutes M (12), --seconds S per measure and round (5), --rounds N (3),
//   --python P (the first of python3 and /usr/bin/python3 that imports torch), --threads N (PyTorch's threads: 2, the cores), --json FILE
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { benchMain, seconds } from './harness/main';
import { runQuantizeBench } from './harness/quantize';

function options() {
  const { values: v } = parseArgs({
    options: {
      'train-minutes': { type: 'string' }, seconds: { type: 'string' }, rounds: { type: 'string' },
      python: { type: 'string' }, threads: { type: 'string' }, json: { type: 'string' },
    },
    strict: true,
  });
  const int = (flag: string, x: string | undefined, d: number) => {
    const n = x === undefined ? d : Number(x);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag} must be a positive integer (got ${x})`);
    return n;
  };
  return {
    trainMinutes: int('train-minutes', v['train-minutes'], 12),
    seconds: seconds('seconds', v.seconds) ?? 5,
    rounds: int('rounds', v.rounds, 3),
    python: v.python ?? torchPython(),
    threads: int('threads', v.threads, 2),
    json: v.json ?? join(__dirname, 'results', 'quantize-cpu-2core.json'),
  };
}

/** The first python that imports torch: python3 on the PATH (a pyenv's may lack it), else Debian's. */
function torchPython(): string {
  for (const p of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(p, ['-c', 'import torch'], { stdio: 'ignore' });
      return p;
    } catch {
      // try the next
    }
  }
  return 'python3';
}

benchMain('bench:quantize', options, runQuantizeBench);
