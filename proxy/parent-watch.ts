/**
 * Under `npm start` the proxy is npm's child, and npm exits on SIGTERM without passing it on: the
 * proxy would be left serving, orphaned, undrained, and the next `npm start` would find its ports
 * taken. So a proxy started by npm takes its parent's exit (it is re-parented) as a SIGTERM.
 * Elsewhere (a container's PID 1, systemd, `node dist/proxy/cli.js`) the parent is left alone.
 */
export function drainWhenNpmGoes(env: NodeJS.ProcessEnv, onGone: () => void, intervalMs = 1000): () => void {
  const parent = process.ppid;
  if (env.npm_lifecycle_event !== 'start' || parent <= 1) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
