/**
 * Crash-safe file replacement (DESIGN.md, "Checkpoints": writes are atomic).
 *
 * The data goes to a temporary file in the target's own directory (same file system, so the
 * rename is atomic), is flushed to disk, renamed over the target, and the directory entry is
 * flushed too. A crash at any point leaves either the old file or the new one under the
 * target's name, never a torn one; at worst a stray temporary file `.NAME.PID.RANDOM.tmp`.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as nodePath from 'node:path';
import { RnnlmError } from '../errors';

function reasonOf(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}

/** fsync a directory so that a rename inside it survives a power loss; a no-op where unsupported. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(dir, 'r');
    await handle.sync();
  } catch (e) {
    const code = errnoOf(e);
    // Directories cannot be opened or fsynced on some platforms and file systems (Windows,
    // some network file systems): there the rename is as durable as the system makes it.
    if (code === 'EINVAL' || code === 'EISDIR' || code === 'ENOTSUP' || code === 'EBADF' ||
        (process.platform === 'win32' && code === 'EPERM')) return;
    throw e;
  } finally {
    if (handle) await handle.close().catch(() => undefined);
  }
}

/**
 * Replaces the file at `path` with `data` atomically (temp file, fsync, rename, fsync of the
 * directory). A string is written as UTF-8. On failure the temporary file is removed, the old
 * file (if any) is left as it was, and an RnnlmError('ERR_CHECKPOINT') says why.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  if (typeof path !== 'string' || path.length === 0) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `writeFileAtomic: path must be a non-empty string (got ${typeof path === 'string' ? "''" : typeof path})`);
  }
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `writeFileAtomic: data must be a Uint8Array or a string (got ${data === null ? 'null' : typeof data})`);
  }
  const target = nodePath.resolve(path);
  const dir = nodePath.dirname(target);
  const temp = nodePath.join(
    dir,
    `.${nodePath.basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`,
  );

  let handle: fs.FileHandle | undefined;
  let tempExists = false;
  try {
    // 'wx': fail rather than follow or clobber anything already there under the temp name.
    handle = await fs.open(temp, 'wx', 0o666);
    tempExists = true;
    // Keep the permissions of the file being replaced, where there is one.
    try {
      const old = await fs.stat(target);
      if (old.isFile()) await handle.chmod(old.mode & 0o7777);
    } catch {
      // no old file (or not ours to inspect): the default mode is fine
    }
    await handle.writeFile(data);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temp, target);
    tempExists = false;
    await syncDirectory(dir);
  } catch (e) {
    if (handle) await handle.close().catch(() => undefined);
    if (tempExists) await fs.unlink(temp).catch(() => undefined);
    throw new RnnlmError('ERR_CHECKPOINT', `cannot write ${path}: ${reasonOf(e)}`);
  }
}
