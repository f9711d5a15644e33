// The CUDA backend where there is no GPU (here, and CI): device selection falls back to the
// CPU and says why; device 'cuda' throws ERR_CUDA_UNAVAILABLE naming what is missing; the
// library search order and the loader's error text, with fake library folders. The GPU
// parity suite itself runs on the GPU machine (gpu/gpu-check.sh).
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { selectBackend } from '../../lib/backend/index';
import { cudaAddonPaths, cudaLibraryFolders } from '../../lib/backend/cuda';
import { RnnlmError } from '../../lib/errors';
import { nodeRequire } from '../../lib/util/package-root';

const dir = mkdtempSync(join(tmpdir(), 'rnnlm-cuda-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('library search order (docs/ARCHITECTURE.md, "Devices")', () => {
  test('RNNLM_CUDA_LIB_PATH, then the loader path, then CUDA_HOME / CUDA_PATH, then PyTorch wheels', () => {
    const venv = join(dir, 'venv');
    const site = join(venv, 'lib', 'python3.12', 'site-packages');
    mkdirSync(join(site, 'nvidia', 'cudnn', 'lib'), { recursive: true });
    const home = join(dir, 'home'); // empty: no ~/.local wheels
    mkdirSync(home);
    const folders = cudaLibraryFolders({ RNNLM_CUDA_LIB_PATH: '/a:/b', CUDA_HOME: '/cuda', CUDA_PATH: '/cuda2', VIRTUAL_ENV: venv }, home);
    const expected = [
      '/a', '/b', '',
      '/cuda/lib64', '/cuda/lib', '/cuda/targets/x86_64-linux/lib',
      '/cuda2/lib64', '/cuda2/lib', '/cuda2/targets/x86_64-linux/lib',
      join(site, 'nvidia', 'cudnn', 'lib'), join(site, 'nvidia', 'cublas', 'lib'),
    ];
    // Wheels of other Python prefixes on this machine may follow; ours come first among them.
    expect(folders.slice(0, expected.length)).toEqual(expected);
  });

  test('with nothing configured, the system loader path alone', () => {
    const home = join(dir, 'home2');
    mkdirSync(home);
    const folders = cudaLibraryFolders({}, home);
    expect(folders[0]).toBe('');
  });
});

describe('without a GPU', () => {
  test("device 'auto' picks the CPU and says why", () => {
    const { backend, reason } = selectBackend('auto');
    expect(backend.device).toBe('cpu');
    expect(reason).toMatch(/^auto: CPU, because .*(NVIDIA driver|CUDA|cuDNN|libcudnn|GPU|rnnlm_cuda)/);
  });

  test("device 'cuda' throws ERR_CUDA_UNAVAILABLE saying what is missing and where it looked", () => {
    let err: unknown;
    try {
      selectBackend('cuda');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RnnlmError);
    expect((err as RnnlmError).code).toBe('ERR_CUDA_UNAVAILABLE');
    expect((err as RnnlmError).message).toMatch(/rnnlm_cuda\.node|libcudnn\.so\.9|GPU/);
  });
});

const built = cudaAddonPaths().find((p) => existsSync(p));
describe.skipIf(!built)(`the native loader (${built ? 'CUDA addon built' : 'SKIPPED: CUDA addon not built: no nvcc'})`, () => {
  test('reports every folder tried and why each failed', () => {
    const a = join(dir, 'libsA'), b = join(dir, 'libsB');
    mkdirSync(a);
    mkdirSync(b);
    writeFileSync(join(a, 'libcudnn.so.9'), 'not a library');
    const addon = nodeRequire(built!) as { setErrorClass(c: unknown): void; load(f: string[]): unknown };
    addon.setErrorClass(RnnlmError);
    let err: unknown;
    try {
      addon.load([a, b, '']);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RnnlmError);
    const msg = (err as RnnlmError).message;
    expect((err as RnnlmError).code).toBe('ERR_CUDA_UNAVAILABLE');
    expect(msg).toMatch(/libcudnn\.so\.9 \(cuDNN 9\) was not found/);
    const lines = msg.split('\n').slice(1).map((l) => l.trim());
    expect(lines[0]).toMatch(new RegExp(`^${join(a, 'libcudnn.so.9').replace(/\./g, '\\.')}: .*(invalid ELF header|file too short)`));
    expect(lines[1]).toMatch(new RegExp(`^${join(b, 'libcudnn.so.9').replace(/\./g, '\\.')}: .*No such file`));
    expect(lines[2]).toMatch(/^libcudnn\.so\.9 \(system loader path\): /);
  });
});
