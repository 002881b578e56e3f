import { meshError, type MeshError } from '../errors.js'

/**
 * A file system error (Node's `ErrnoException`) in words a person can act on, with the stable code
 * ERR_DATA_DIR: a file in the way of a directory, no permission, a read-only file system, a full
 * disk. Undefined for anything that is not a file system error.
 */

const REASONS: Record<string, string> = {
  EEXIST: 'a file is in the way where a directory belongs',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'it is a directory, not a file',
  ENOENT: 'it does not exist',
  EACCES: 'permission denied (check the owner and mode of the directory)',
  EPERM: 'operation not permitted',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device (the disk is full)',
  EDQUOT: 'the disk quota is exhausted',
  EMFILE: 'too many open files',
  EIO: 'an input/output error (a failing disk or SD card?)'
}

/** Whether an error is a Node file-system error (with a `syscall`) whose `code` iotmesh explains in words (ENOENT, EACCES, …). */
export function isFsError (err: unknown): err is NodeJS.ErrnoException & { code: string } {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string' && (err as NodeJS.ErrnoException).syscall !== undefined &&
    REASONS[(err as NodeJS.ErrnoException).code ?? ''] !== undefined
}

/** `what` names the thing ("the data directory d", "the outbox"); the path the system call failed on is added. */
export function storageError (err: unknown, what: string): MeshError | undefined {
  if (!isFsError(err)) return undefined
  const path = err.path === undefined ? '' : ` (${err.syscall} ${err.path})`
  return meshError('ERR_DATA_DIR', `${what}: ${REASONS[err.code] ?? err.code}${path}: ${err.code}`, { cause: err })
}
