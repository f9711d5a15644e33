/**
 * Device selection (docs/ARCHITECTURE.md, "Devices"): 'cpu', 'cuda', or 'auto' = CUDA when its
 * backend loads and a GPU answers, else the CPU, with the reason kept (model.deviceReason)
 * and logged under NODE_DEBUG=rnnlm.
 */
import { debuglog } from 'node:util';
import { RnnlmError, invalidArgument } from '../errors';
import { cpuBackend } from './cpu';
import { cudaBackend, nvidiaDriverPresent } from './cuda';
import type { Backend } from './types';

/** Where a model computes; the one list of the choices (create, load, the CLI's --device). */
export const DEVICES = ['auto', 'cpu', 'cuda'] as const;
export type DeviceOption = (typeof DEVICES)[number];

const debug = debuglog('rnnlm');


export function selectBackend(device: DeviceOption): { backend: Backend; reason: string } {
  if (device === 'cpu') return { backend: cpuBackend, reason: "device: 'cpu' was requested" };
  if (device === 'cuda') return { backend: cudaBackend(), reason: "device: 'cuda' was requested" };
  if (device !== 'auto') throw invalidArgument(`device must be 'auto', 'cpu' or 'cuda' (got '${String(device)}')`);
  if (!nvidiaDriverPresent()) {
    const why = 'no NVIDIA driver is loaded (no /proc/driver/nvidia/version or /dev/nvidiactl)';
    debug('device auto: using the CPU because %s', why);
    return { backend: cpuBackend, reason: `auto: CPU, because ${why}` };
  }
  try {
    const backend = cudaBackend();
    debug('device auto: using CUDA');
    return { backend, reason: 'auto: the CUDA backend loaded and a GPU answered' };
  } catch (e) {
    const why = e instanceof RnnlmError ? e.message : String(e);
    debug('device auto: using the CPU because %s', why);
    return { backend: cpuBackend, reason: `auto: CPU, because ${why}` };
  }
}
