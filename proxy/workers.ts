import cluster from 'node:cluster';
import type { ProxyConfig } from './config';
import type { Logger } from './log';
import { loadAdminToken } from './admin-token';
import { loadServerSecret } from './store/secret';
import { resolveTls } from './tls-setup';

/** Environment variable telling a worker its 1-based index. */
export const WORKER_INDEX_ENV = 'OCPP_PROXY_WORKER_INDEX';

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
 * arguments, restarts a worker that dies unexpectedly, and on SIGTERM/SIGINT passes the signal on
 * (each worker drains) and resolves once all have exited.
 */
export async function runPrimary(config: ProxyConfig, argv: string[], log: Logger): Promise<number> {
  await resolveTls(config);
  if (!config.redis) await loadServerSecret({ file: config.secretFile ?? undefined, generateIn: config.dataDir });
  else if (config.secretFile) await loadServerSecret({ file: config.secretFile });
  await loadAdminToken({ file: config.adminTokenFile, generateIn: config.dataDir });
  cluster.setupPrimary({ args: ['serve', ...argv] });
  let stopping = false;
  let quickDeaths = 0;
  let giveUp: ((code: number) => void) | null = null;
  const fork = (index: number) => {
    const startedAt = Date.now();
    const w = cluster.fork({ [WORKER_INDEX_ENV]: String(index) });
    w.once('exit', (code, signal) => {
      if (stopping) return;
      // A worker that keeps dying right after start (port taken, bad config) will not get better.
      quickDeaths = Date.now() - startedAt < 10_000 ? quickDeaths + 1 : 0;
      if (quickDeaths >= 5) {
        log.fatal({ event: 'workers_failing', worker: index, code }, 'workers keep dying at start; stopping');
        giveUp?.(1);
        return;
      }
      log.error({ event: 'worker_died', worker: index, code, signal }, 'worker died; restarting it');
      setTimeout(() => fork(index), 1000).unref();
    });
  };
  for (let i = 1; i <= config.workers; i++) fork(i);
  log.info({ event: 'workers_started', workers: config.workers });
  return new Promise((resolve) => {
    giveUp = (code) => {
      stopping = true;
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      resolve(code);
    };
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ event: 'shutdown', signal, workers: Object.keys(cluster.workers ?? {}).length });
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
      const check = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(check);
          resolve(0);
        }
      }, 100);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
