/**
 * Atomic writes: a file or a whole directory appears complete or not at all, so a crash or Ctrl-C
 * mid-save never leaves a half-written checkpoint that a later run would trust.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { DpoError } from '../errors.js';

let tmpCounter = 0;

/** A temp path next to `path` (same directory, so the rename is atomic). */
export function tempPathFor(path: string): string {
  return `${path}.tmp-${process.pid}-${tmpCounter++}`;
}

/** Writes `data` to a temp file beside `path`, fsyncs it and renames it over `path`. */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w');
    let done = 0;
    while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) try { closeSync(fd); } catch { /* closed */ }
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw new DpoError(`cannot write ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); check that its directory exists and is writable`);
  }
}

/**
 * Builds a directory atomically: `fill(tmp)` writes into `<dir>.tmp-<pid>`, which then replaces
 * `dir` (an older `dir` is moved aside first and removed after, so `dir` is never half-written).
 * If `fill` throws, the temp directory is removed and `dir` is untouched.
 */
export function writeDirAtomically(dir: string, fill: (tmp: string) => void): void {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    fill(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const old = `${dir}.old-${process.pid}`;
  try {
    if (existsSync(dir)) {
      rmSync(old, { recursive: true, force: true });
      renameSync(dir, old);
    }
    renameSync(tmp, dir);
  } catch (e) {
    // Put the old directory back if the swap failed half-way.
    if (!existsSync(dir) && existsSync(old)) try { renameSync(old, dir); } catch { /* leave it at old */ }
    throw new DpoError(`cannot replace ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the new contents are in ${tmp}`);
  }
  rmSync(old, { recursive: true, force: true });
}
