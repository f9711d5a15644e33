// Where CUDA's half-precision RNN keeps its copies (native/cuda/rnn_half.h): the only part of
// that path that needs no GPU, so it is proven here — test/gpu/half_parts.cc, built with the C++
// compiler the native build uses, checks 3,000 random shapes, base addresses and slack, and that
// a buffer short of its part is refused. The cuDNN calls themselves are the GPU check's.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from 'vitest';

test('the half copies are aligned, inside the buffer, disjoint, and leave cuDNN the bytes it asked for', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rnnlm-half-parts-'));
  try {
    const exe = join(dir, 'half_parts');
    const cxx = process.env.CXX || 'g++';
    let t0 = performance.now();
    const build = spawnSync(cxx, ['-std=c++17', '-Wall', '-Werror', '-O1', '-o', exe, join(__dirname, 'half_parts.cc')], { encoding: 'utf8', timeout: 120_000 });
    expect({ status: build.status, signal: build.signal, stderr: build.stderr }).toEqual({ status: 0, signal: null, stderr: '' });
    expect(performance.now() - t0).toBeLessThan(120_000);
    t0 = performance.now();
    const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 60_000 });
    expect({ status: run.status, signal: run.signal, stdout: run.stdout, stderr: run.stderr }).toEqual({ status: 0, signal: null, stdout: '3000 cases, 0 failures\n', stderr: '' });
    expect(performance.now() - t0).toBeLessThan(60_000);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 200_000);
