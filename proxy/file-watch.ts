import { unwatchFile, watchFile, type Stats } from 'node:fs';

/**
 * Calls `reload` a moment after any of `paths` changes (its modification time or its inode), and
 * returns a function that stops watching. Polls rather than using inotify: Kubernetes updates a
 * mounted Secret by swapping a symlinked directory, which inotify on the file misses. Debounced,
 * because a certificate and its key are replaced within moments of each other and a writer may
 * not be done yet.
 */
export function watchFiles(paths: readonly string[], reload: () => void, intervalMs = 2000): () => void {
  let timer: NodeJS.Timeout | null = null;
  const fire = () => {
    timer = null;
    reload();
  };
  const onChange = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs === prev.mtimeMs && cur.ino === prev.ino) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(fire, Math.min(500, intervalMs));
  };
  for (const p of paths) watchFile(p, { interval: intervalMs, persistent: false }, onChange);
  return () => {
    if (timer) clearTimeout(timer);
    for (const p of paths) unwatchFile(p, onChange);
  };
}
