import cluster, { type Worker } from 'node:cluster';
import type { ProxyConfig } from './config';
import type { Logger } from './log';
import { loadAdminToken } from './admin-token';
import { loadServerSecret } from './store/secret';
import { resolveTls } from './tls-setup';
import { drainWhenNpmGoes } from './parent-watch';

/** Environment variable telling a worker its 1-based index. */
export const WORKER_INDEX_ENV = 'OCPP_PROXY_WORKER_INDEX';

/** Exit code of a process that found the store unreachable at start (EX_TEMPFAIL: try again later). */
export const EXIT_STORE_UNAVAILABLE = 75;

/** The primary's IPC message asking a worker to drain (signals are not relayed: see runPrimary). */
export const DRAIN_MESSAGE = 'ocpp-security-proxy:drain';

/** Whether an IPC message is the primary's drain request. */
export function isDrainMessage(m: unknown): boolean {
  return (m as { type?: unknown } | null)?.type === DRAIN_MESSAGE;
}

/** Longest wait before a worker that found the store unreachable is started again. */
const STORE_RETRY_MAX_MS = 30_000;
/** How long past drainGraceMs + drainJitterMs a worker may take before the primary ends it. */
const DRAIN_MARGIN_MS = 15_000;

/** This process's worker index (1 when not running under the cluster primary). */
export function workerIndex(): number {
  return Number(process.env[WORKER_INDEX_ENV] ?? '1') || 1;
}

/**
 * A worker's configuration: the charger listeners are shared through the cluster primary, the admin
 * listener is per worker (port + index − 1) so each worker's metrics can be scraped on their own.
 */
export function workerConfig(c: ProxyConfig, index: number): ProxyConfig {
  if (index <= 1 || c.adminListen.port === 0) return c;
  return { ...c, adminListen: { ...c.adminListen, port: c.adminListen.port + index - 1 } };
}

/**
 * The cluster primary: prepares what workers would otherwise race to create (development PKI,
 * server secret, admin token), forks `config.workers` workers running `serve` with the same
 * arguments, restarts a worker that dies unexpectedly, and on SIGTERM/SIGINT asks every worker to
 * drain and resolves once all have exited.
 *
 * The drain request goes over IPC, not as a signal: a signal sent to the process group (Ctrl-C,
 * systemd's default KillMode) reaches every worker already, and a relayed copy would read to it as
 * a second signal ("exit now"). A worker that found the store unreachable (exit 75) is started
 * again with back-off for as long as it takes; other workers that keep dying right after start
 * (port taken, bad config) make the primary give up, after the others have drained.
 */
export async function runPrimary(config: ProxyConfig, argv: string[], log: Logger): Promise<number> {
  await resolveTls(config);
  if (!config.redis) await loadServerSecret({ file: config.secretFile ?? undefined, generateIn: config.dataDir });
  else if (config.secretFile) await loadServerSecret({ file: config.secretFile });
  await loadAdminToken({ file: config.adminTokenFile, generateIn: config.dataDir });
  cluster.setupPrimary({ args: ['serve', ...argv] });
  let stopping = false;
  let quickDeaths = 0;
  /** Per worker index: starts in a row that found the store unreachable (back-off). */
  const storeWaits = new Map<number, number>();
  let giveUp: ((code: number) => void) | null = null;
  const fork = (index: number) => {
    const startedAt = Date.now();
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    // A send to a worker whose channel just closed fails here, not in a catch: never fatal to the primary.
    w.on('error', (err: Error) => log.debug({ event: 'worker_ipc_error', worker: index, err: err.message }));
    // Listening means its store was opened: the back-off starts over.
    w.once('listening', () => {
      storeWaits.delete(index);
      // Started while the others were asked to drain (the request may have come before it listened for it).
      if (stopping) askToDrain(w);
    });
    w.once('exit', (code, signal) => {
      if (stopping) return;
      if (code === EXIT_STORE_UNAVAILABLE) {
        // Redis restarting or failing over: not a reason to end the workers that are still serving.
        const waits = storeWaits.get(index) ?? 0;
        storeWaits.set(index, waits + 1);
        const delay = Math.min(STORE_RETRY_MAX_MS, 1000 * 2 ** Math.min(waits, 5));
        log.warn({ event: 'worker_waiting_for_store', worker: index, retryInMs: delay }, 'the store is unreachable; starting the worker again later');
        setTimeout(() => { if (!stopping) fork(index); }, delay).unref();
        return;
      }
      // A worker that keeps dying right after start (port taken, bad config) will not get better.
      quickDeaths = Date.now() - startedAt < 10_000 ? quickDeaths + 1 : 0;
      if (quickDeaths >= 5) {
        log.fatal({ event: 'workers_failing', worker: index, code }, 'workers keep dying at start; stopping');
        giveUp?.(1);
        return;
      }
      log.error({ event: 'worker_died', worker: index, code, signal }, 'worker died; restarting it');
      setTimeout(() => { if (!stopping) fork(index); }, 1000).unref();
    });
  };
  for (let i = 1; i <= config.workers; i++) fork(i);
  log.info({ event: 'workers_started', workers: config.workers });
  return new Promise((resolve) => {
    // Asks every worker to drain and resolves with `code` once all have exited: the primary's exit
    // would otherwise cut their IPC channel, and Node ends a worker at once when that happens.
    const drainAll = (code: number) => {
      for (const w of Object.values(cluster.workers ?? {})) if (w) askToDrain(w);
      // Backstop: a worker still running well after its drain should have ended is stopped.
      const force = setTimeout(() => {
        for (const w of Object.values(cluster.workers ?? {})) {
          if (!w) continue;
          log.error({ event: 'worker_killed', pid: w.process.pid, afterMs: config.drainGraceMs + config.drainJitterMs + DRAIN_MARGIN_MS }, 'a worker did not end after its drain; killing it');
          w.process.kill('SIGKILL');
        }
      }, config.drainGraceMs + config.drainJitterMs + DRAIN_MARGIN_MS).unref();
      const check = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(check);
          clearTimeout(force);
          resolve(code);
        }
      }, 100);
    };
    giveUp = (code) => {
      stopping = true;
      drainAll(code);
    };
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        // Asked again: the workers exit now (each takes a second signal as that).
        for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
        return;
      }
      stopping = true;
      log.info({ event: 'shutdown', signal, workers: Object.keys(cluster.workers ?? {}).length });
      drainAll(0);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    drainWhenNpmGoes(process.env, () => {
      if (stopping) return; // already draining: not a second request
      stopping = true;
      log.warn({ event: 'parent_gone' }, 'npm, which started the proxy, has exited: draining as on SIGTERM');
      drainAll(0);
    });
  });
}

/** Asks a worker to drain over IPC; one that cannot be asked (its channel is closing) is told by SIGTERM. */
function askToDrain(w: Worker): void {
  if (w.isConnected()) w.send({ type: DRAIN_MESSAGE }, (err: Error | null) => { if (err) w.process.kill('SIGTERM'); });
  else w.process.kill('SIGTERM');
}
