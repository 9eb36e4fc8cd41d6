import type { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { parseCaBundle } from './forwarded-cert';

/**
 * A CA bundle file read as it is now: re-read when its modification time or size changes, looked at
 * no more than once per `checkEveryMs`. The TLS listener reloads its client CA when the file
 * changes (tls.ts); certificates forwarded by a TLS-terminating front are checked against the same
 * file, and must follow it too: a CA removed after a compromise must stop being trusted, and chargers
 * holding certificates from a newly added one must get in, without a restart.
 * A file that cannot be read or parsed keeps the last good bundle (and is tried again next time).
 */
export function reloadingCaBundle(file: string, checkEveryMs = 5000, now: () => number = Date.now): () => X509Certificate[] {
  let anchors: X509Certificate[] | null = null;
  let version = '';
  let checkedAt = -Infinity;
  return () => {
    const t = now();
    if (anchors && t - checkedAt < checkEveryMs) return anchors;
    checkedAt = t;
    try {
      const st = statSync(file);
      const current = `${st.mtimeMs}:${st.size}`;
      if (!anchors || current !== version) {
        anchors = parseCaBundle(readFileSync(file, 'utf8'));
        version = current;
      }
    } catch (err) {
      if (!anchors) throw err; // nothing good to fall back on: the caller fails closed
    }
    return anchors;
  };
}
