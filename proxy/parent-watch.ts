/** The parent this process started under (read when the CLI loads, before anything could change it). */
const PARENT_AT_START = process.ppid;

/**
 * Under `npm start` the proxy is npm's child, and npm exits on SIGTERM without passing it on: the
 * proxy would be left serving, orphaned, undrained, and the next `npm start` would find its ports
 * taken. So a proxy started by npm drains when its parent goes (it is re-parented), also when that
 * happened while it was still starting. Elsewhere (a container's PID 1, systemd,
 * `node dist/proxy/cli.js`) the parent is left alone.
 */
export function drainWhenNpmGoes(env: NodeJS.ProcessEnv, onGone: () => void, intervalMs = 1000): () => void {
  if (env.npm_lifecycle_event !== 'start' || PARENT_AT_START <= 1) return () => undefined;
  const timer = setInterval(check, intervalMs);
  timer.unref();
  function check(): void {
    if (process.ppid === PARENT_AT_START) return;
    clearInterval(timer);
    onGone();
  }
  check();
  return () => clearInterval(timer);
}
