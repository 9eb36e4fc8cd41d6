/** File helpers for PEM material: atomic writes, private keys readable by the owner only. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import * as crypto from 'node:crypto';

/**
 * Writes `text` to `file` atomically (temp file + rename in the same directory), creating the
 * directory if needed. `secret` files (private keys) get mode 0600, others 0644.
 */
export async function writePemFile(file: string, text: string, secret: boolean): Promise<void> {
  const mode = secret ? 0o600 : 0o644;
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${crypto.randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, text, { mode });
    await fs.chmod(tmp, mode); // the umask may have narrowed or the file may pre-exist
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/** Reads a file as UTF-8, or returns undefined when it does not exist. */
export async function readOptional(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
