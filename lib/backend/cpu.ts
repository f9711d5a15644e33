import { freemem } from 'node:os';
import { RnnlmError } from '../errors';
import { packageRoot, nodeRequire } from '../util/package-root';
import type { Backend, MemoryStats, RnnDescriptor, RnnOptions, Stream, StreamOptions } from './types';

interface CpuAddon {
  Stream: new (options?: StreamOptions) => Stream;
  Rnn: new (options: RnnOptions) => RnnDescriptor;
  setErrorClass(ctor: typeof RnnlmError): void;
  /** kernels: the instruction set of our own kernels ('avx512vnni', 'avx2' or 'base'). */
  blasInfo(): { library: string; config: string; threads: number; kernels: string };
  setBlasThreads(n: number): void;
  memoryStats(): MemoryStats;
}

let addon: CpuAddon | undefined;

/** The CPU addon (native/cpu), loaded once: a prebuild if one matches, else build/Release. */
export function cpuAddon(): CpuAddon {
  if (!addon) {
    // RNNLM_CPU_ADDON: a given rnnlm_cpu.node (the GPU check's bundle runs with no node_modules).
    const explicit = process.env.RNNLM_CPU_ADDON;
    try {
      const load = () => (nodeRequire('node-gyp-build') as (dir: string) => unknown)(packageRoot());
      addon = (explicit ? nodeRequire(explicit) : load()) as CpuAddon;
    } catch (e) {
      // The loader's first line says what failed (a missing file, or e.g. "GLIBC_2.29 not found").
      const reason = String((e as Error).message).split('\n')[0];
      throw new RnnlmError(
        'ERR_NATIVE',
        `cannot load the rnnlm CPU backend (${reason}). The prebuilt binaries cover Linux x64 and arm64 with glibc 2.29 or newer; ` +
          `elsewhere allow rnnlm's install script and run \`npm rebuild rnnlm\` to compile it (needs a C++17 compiler, make, python3 and ` +
          `the OpenBLAS headers), or \`npm run build:native\` in a source checkout`,
      );
    }
    addon.setErrorClass(RnnlmError);
  }
  return addon;
}

export const cpuBackend: Backend = {
  device: 'cpu',
  dtypes: ['f32', 'f64'],
  int8: true,
  precisions: ['fp32'],
  createStream: (options) => new (cpuAddon().Stream)(options),
  createRnn: (options) => new (cpuAddon().Rnn)(options),
  info: () => ({ device: 'cpu', blas: cpuAddon().blasInfo() }),
  memoryStats: () => cpuAddon().memoryStats(),
  availableBytes: () => freemem(),
};
