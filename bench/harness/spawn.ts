/** One benchmark worker in a child process with a time budget (every run of `npm run bench` goes through here). */
import { spawn } from 'node:child_process';

export interface WorkerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The budget ran out and the worker was killed (SIGKILL). */
  timedOut: boolean;
  /** The last 4,000 characters the worker wrote to stderr. */
  stderr: string;
  /** From spawn to exit. */
  seconds: number;
}

/**
 * Runs `file` with the spec as its one argument, under this process's loader (tsx in a clone),
 * passes each message the worker sends to onMessage, and resolves when it exits; never rejects.
 */
export function spawnWorker<M>(file: string, spec: unknown, budgetSeconds: number, onMessage: (m: M) => void): Promise<WorkerExit> {
  return new Promise((resolve) => {
    const started = Date.now();
    let stderr = '';
    let timedOut = false;
    const child = spawn(process.execPath, [...process.execArgv, file, JSON.stringify(spec)], {
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    child.stderr!.on('data', (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('message', (m: M) => onMessage(m));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, budgetSeconds * 1000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, timedOut, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}

/** The last lines of a worker's stderr, for a reason on one line. */
export const stderrTail = (stderr: string, lines = 3) => stderr.trim().split('\n').slice(-lines).join(' | ');
