/**
 * Durable file writes for the embedded store: write a temp file, fsync it, rename it over the target,
 * fsync the directory. A crash at any point leaves either the old or the new file, never a mix; stray
 * temp files from a crash are removed on the next open.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from './errors';

let tempCounter = 0;

/** Atomically replace `file` with `contents` and make it durable. Mode 0600. */
export async function writeFileAtomic(file: string, contents: string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${++tempCounter}`;
  try {
    const fh = await fs.open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(contents);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
    await fsyncDir(path.dirname(file));
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new StoreError('store_unavailable', `cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause: err,
    });
  }
}

/** Remove `<file>.tmp-*` leftovers of interrupted writes. */
export async function removeStaleTemps(file: string): Promise<void> {
  const dir = path.dirname(file);
  const prefix = path.basename(file) + '.tmp-';
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith(prefix)) await fs.rm(path.join(dir, name), { force: true });
  }
}

async function fsyncDir(dir: string): Promise<void> {
  // Directory fsync persists the rename; not supported on every platform, so failures are ignored.
  try {
    const fh = await fs.open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}
