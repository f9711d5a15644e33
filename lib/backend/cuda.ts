/**
 * The CUDA backend (native/cuda): loaded only on request or by device 'auto', so a machine
 * without a GPU never touches it. cuDNN 9 and cuBLAS are found at run time, searched in the
 * order of docs/ARCHITECTURE.md ("Devices"): RNNLM_CUDA_LIB_PATH, the system loader path, CUDA_HOME / CUDA_PATH,
 * then the NVIDIA pip wheels of an installed PyTorch.
 */
import { existsSync, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { RnnlmError } from '../errors';
import { nodeRequire, packageRoot } from '../util/package-root';
import { RNN_ALGORITHMS, type Backend, type MemoryStats, type RnnAlgorithm, type RnnDescriptor, type RnnOptions, type Stream, type StreamOptions } from './types';

export interface CudaInfo {
  device: string;
  computeCapability: string;
  memoryBytes: number;
  driver: number;
  runtime: number;
  cudnn: number;
  cudnnPath: string;
  cublasPath: string;
}

interface CudaAddon {
  Stream: new (options?: StreamOptions) => Stream;
  Rnn: new (options: RnnOptions) => RnnDescriptor;
  setErrorClass(ctor: typeof RnnlmError): void;
  load(folders: string[]): CudaInfo;
  memoryInfo(): { free: number; total: number };
  memoryStats(): MemoryStats;
}

type Env = Record<string, string | undefined>;

/** Site-packages folders where a pip-installed PyTorch may have put the NVIDIA wheels. */
export function sitePackages(env: Env = process.env, home = homedir()): string[] {
  const prefixes = [env.VIRTUAL_ENV, env.CONDA_PREFIX, join(home, '.local'), '/usr/local', '/usr'];
  for (const root of ['/opt', home]) {
    let entries: string[] = [];
    try {
      entries = readdirSync(root);
    } catch {
      continue;
    }
    for (const e of entries) for (const venv of ['.venv', 'venv']) prefixes.push(join(root, e, venv));
  }
  const out: string[] = [];
  for (const prefix of prefixes) {
    if (!prefix) continue;
    const lib = join(prefix, 'lib');
    let pythons: string[] = [];
    try {
      pythons = readdirSync(lib).filter((d) => /^python3(\.\d+)?$/.test(d)).sort().reverse();
    } catch {
      continue;
    }
    for (const py of pythons) for (const kind of ['site-packages', 'dist-packages']) {
      const dir = join(lib, py, kind);
      if (existsSync(join(dir, 'nvidia'))) out.push(dir);
    }
  }
  return [...new Set(out)];
}

/** Folders searched for libcudnn.so.9 and libcublas.so.13/.12, in order; '' = the system loader path. */
export function cudaLibraryFolders(env: Env = process.env, home = homedir()): string[] {
  const dirs: string[] = [];
  for (const d of (env.RNNLM_CUDA_LIB_PATH ?? '').split(delimiter)) if (d) dirs.push(d);
  dirs.push('');
  for (const v of ['CUDA_HOME', 'CUDA_PATH']) {
    const root = env[v];
    if (root) dirs.push(join(root, 'lib64'), join(root, 'lib'), join(root, 'targets', 'x86_64-linux', 'lib'));
  }
  for (const site of sitePackages(env, home)) {
    dirs.push(join(site, 'nvidia', 'cudnn', 'lib'), join(site, 'nvidia', 'cublas', 'lib'));
  }
  return [...new Set(dirs)];
}

/** Where the CUDA addon may be: a source build, then the prebuild that ships in the package. */
export function cudaAddonPaths(root?: string): string[] {
  if (process.env.RNNLM_CUDA_ADDON) return [process.env.RNNLM_CUDA_ADDON];
  root ??= packageRoot();
  return [join(root, 'build-cuda', 'Release', 'rnnlm_cuda.node'), join(root, 'prebuilds', 'cuda', `${process.platform}-${process.arch}`, 'rnnlm_cuda.node')];
}

/** Whether an NVIDIA kernel driver is present; without one, device 'auto' never loads the CUDA addon. */
export function nvidiaDriverPresent(): boolean {
  return existsSync('/proc/driver/nvidia/version') || existsSync('/dev/nvidiactl');
}

let loaded: { addon: CudaAddon; info: CudaInfo } | undefined;

/** Loads the CUDA addon and its libraries, or throws ERR_CUDA_UNAVAILABLE saying what is missing and where it looked. */
export function loadCuda(): { addon: CudaAddon; info: CudaInfo } {
  if (loaded) return loaded;
  const paths = cudaAddonPaths();
  const file = paths.find((p) => existsSync(p));
  if (!file) {
    throw new RnnlmError(
      'ERR_CUDA_UNAVAILABLE',
      `the CUDA backend (rnnlm_cuda.node) is not installed; looked in ${paths.join(', ')} (build it with \`npm run build:cuda\`)`,
    );
  }
  let addon: CudaAddon;
  try {
    addon = nodeRequire(file) as CudaAddon;
  } catch (e) {
    throw new RnnlmError('ERR_CUDA_UNAVAILABLE', `cannot load ${file}: ${(e as Error).message}`);
  }
  addon.setErrorClass(RnnlmError);
  const folders = cudaLibraryFolders();
  let info: CudaInfo;
  try {
    info = addon.load(folders);
  } catch (e) {
    if (e instanceof RnnlmError) {
      throw new RnnlmError(
        e.code,
        `${e.message}\nSearch order: RNNLM_CUDA_LIB_PATH, the system loader path (LD_LIBRARY_PATH, ldconfig), CUDA_HOME / CUDA_PATH, the NVIDIA pip wheels of PyTorch; set RNNLM_CUDA_LIB_PATH to the folders holding libcudnn.so.9 and libcublas.so.*`,
      );
    }
    throw e;
  }
  return (loaded = { addon, info });
}

/** RnnOptions.algorithm's default on CUDA: RNNLM_CUDNN_RNN_ALGO, else 'standard' (types.ts says why). */
function defaultAlgorithm(): RnnAlgorithm {
  const v = process.env.RNNLM_CUDNN_RNN_ALGO;
  if (!v) return 'standard';
  if (!(RNN_ALGORITHMS as readonly string[]).includes(v)) throw new RnnlmError('ERR_INVALID_ARGUMENT', `RNNLM_CUDNN_RNN_ALGO must be one of ${RNN_ALGORITHMS.join(', ')} (got '${v}')`);
  return v as RnnAlgorithm;
}

export function cudaBackend(): Backend {
  const { addon, info } = loadCuda();
  return {
    device: 'cuda',
    dtypes: ['f32'],
    int8: false,
    precisions: ['fp32', 'tf32', 'bf16', 'fp16'],
    createStream: (options) => new addon.Stream(options),
    createRnn: (options) => new addon.Rnn({ algorithm: defaultAlgorithm(), ...options }),
    info: () => ({ ...info, backend: 'cuda', memory: addon.memoryInfo() }),
    memoryStats: () => addon.memoryStats(),
    availableBytes: () => addon.memoryInfo().free,
  };
}
