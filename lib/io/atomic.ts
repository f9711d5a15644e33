/**
 * Crash-safe file replacement (docs/ARCHITECTURE.md, "Checkpoints": writes are atomic).
 *
 * The data goes to a temporary file in the target's own directory (same file system, so the
 * rename is atomic), is flushed to disk, renamed over the target, and the directory entry is
 * flushed too. A crash at any point leaves either the old file or the new one under the
 * target's name, never a torn one; at worst a stray temporary file `.NAME.PID.RANDOM.tmp`.
 *
 * Only regular files are ever replaced: a path naming a directory, a FIFO, a device or a socket
 * is refused before anything is written (a rename would put a regular file in its place, and as
 * root `/dev/null` would be gone). A symlink is written through: the file it points to is
 * replaced beside itself and the link stays a link. A dangling symlink is written through too,
 * creating its target, as the shell's `>` and open(2) do: the link names where the file lives
 * whether or not it exists yet, and refusing would make no write safer than following a live
 * link already is. (The path is checked just before the write: a process that swaps a FIFO in
 * between the two is not guarded against.)
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
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

/** What a file-system entry is, for a refusal (never called for regular files or symlinks). */
function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Symlinks followed at most, as Linux's own limit (ELOOP). */
const MAX_LINKS = 40;

/** Where a write to a path lands. */
export interface FileTarget {
  /** The absolute path of the file written: the path itself, or the end of its chain of symlinks. */
  path: string;
  /** Whether `path` is a symlink (written through: the link is kept). */
  viaLink: boolean;
  /** The file there now, when there is one (undefined: the write creates it). */
  stat?: Stats;
}

/**
 * Resolves `path` for a write (`verb` names it in errors): follows symlinks to the file they
 * name, and refuses with ERR_CHECKPOINT anything there that is not a regular file.
 */
export async function fileTarget(path: string, verb = 'write'): Promise<FileTarget> {
  const fail = (what: string) => new RnnlmError('ERR_CHECKPOINT', `cannot ${verb} ${path}: ${what}`);
  let p = nodePath.resolve(path);
  for (let links = 0; ; links++) {
    let st: Stats;
    try {
      st = await fs.lstat(p);
    } catch (e) {
      // Nothing there: the write creates the file (a missing directory fails at the write).
      if (errnoOf(e) === 'ENOENT') return { path: p, viaLink: links > 0 };
      throw fail(reasonOf(e));
    }
    if (st.isFile()) return { path: p, viaLink: links > 0, stat: st };
    if (!st.isSymbolicLink()) {
      const what = links > 0 ? `it is a symlink to ${p}, which is ${kindOf(st)}` : `it is ${kindOf(st)}`;
      throw fail(`${what}, not a regular file; rnnlm ${verb}s only regular files, give the path of a file`);
    }
    if (links === MAX_LINKS) throw fail(`more than ${MAX_LINKS} symlinks in a row (a loop?)`);
    try {
      // Relative to the link's real directory, as the kernel resolves it.
      p = nodePath.resolve(await fs.realpath(nodePath.dirname(p)), await fs.readlink(p));
    } catch (e) {
      throw fail(reasonOf(e));
    }
  }
}

function checkPath(where: string, path: unknown): void {
  if (typeof path !== 'string' || path.length === 0) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `${where}: path must be a non-empty string (got ${typeof path === 'string' ? "''" : typeof path})`);
  }
}

/**
 * Replaces the file at `path` with `data` atomically (temp file, fsync, rename, fsync of the
 * directory); through a symlink, the file it names. A string is written as UTF-8. On failure
 * the temporary file is removed, the old file (if any) is left as it was, and an
 * RnnlmError('ERR_CHECKPOINT') says why; so does a path that is not a regular file.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  checkPath('writeFileAtomic', path);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
    throw new RnnlmError('ERR_INVALID_ARGUMENT', `writeFileAtomic: data must be a Uint8Array or a string (got ${data === null ? 'null' : typeof data})`);
  }
  const { path: target, viaLink, stat: old } = await fileTarget(path);
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
    if (old) await handle.chmod(old.mode & 0o7777);
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
    throw new RnnlmError('ERR_CHECKPOINT', `cannot write ${path}${viaLink ? ` (a symlink to ${target})` : ''}: ${reasonOf(e)}`);
  }
}

/**
 * Makes `to` hold what `from` holds, crash-safely (at every moment `to` holds its old content
 * or the new one): a rename when `from` is a plain file, which is then gone; a copy when `from`
 * is a symlink (the link and its file stay) or on another file system. Symlinks at `to` are
 * written through, and what is not a regular file is refused, as by writeFileAtomic.
 * Resolves to false, touching nothing, when there is no file at `from`.
 */
export async function moveFileAtomic(from: string, to: string): Promise<boolean> {
  checkPath('moveFileAtomic', from);
  checkPath('moveFileAtomic', to);
  const src = await fileTarget(from, 'move');
  if (!src.stat) return false;
  const dst = await fileTarget(to);
  if (!src.viaLink) {
    try {
      await fs.rename(src.path, dst.path);
      await syncDirectory(nodePath.dirname(dst.path));
      return true;
    } catch (e) {
      if (errnoOf(e) !== 'EXDEV') throw new RnnlmError('ERR_CHECKPOINT', `cannot move ${from} to ${to}: ${reasonOf(e)}`);
    }
  }
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(src.path);
  } catch (e) {
    throw new RnnlmError('ERR_CHECKPOINT', `cannot read ${from}: ${reasonOf(e)}`);
  }
  await writeFileAtomic(to, bytes);
  return true;
}

/**
 * Removes the file at `path`; through a symlink, the file it names (the link stays, and a later
 * write through it creates the file again). Resolves to false when there is none; what is not
 * a regular file is refused (ERR_CHECKPOINT) and kept.
 */
export async function removeFile(path: string): Promise<boolean> {
  checkPath('removeFile', path);
  const t = await fileTarget(path, 'remove');
  if (!t.stat) return false;
  try {
    await fs.unlink(t.path);
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return false;
    throw new RnnlmError('ERR_CHECKPOINT', `cannot remove ${path}: ${reasonOf(e)}`);
  }
  return true;
}
