import path from 'node:path';
import cluster from 'node:cluster';
import { startApp } from './app';
import { isDrainMessage, runPrimary, workerConfig, workerIndex } from './workers';
import { loadConfig, meantEnvNames, publicUrlPathMismatch, unknownEnvNames } from './config';
import { parseFlags } from './flags';
import { createLogger } from './log';
import { currentAllocator, JEMALLOC_MALLOC_CONF } from './allocator';
import { startHeapCompaction } from './heap-compaction';
import { ProbeError } from './backend-probe';
import { drainWhenNpmGoes } from './parent-watch';

export const SERVE_USAGE = `Usage: ocpp-security-proxy [serve] [--config FILE] [--listen HOST:PORT] [--backend ws://...] [options]

Runs the proxy. Every configuration key is also a flag (kebab-case) and an environment variable
(OCPP_PROXY_UPPER_SNAKE); flags win over the environment, which wins over the config file.
See the README's configuration table for every key.`;

/** Signals within this long of the drain's start are the same request delivered twice, not a second one. */
const SAME_SHUTDOWN_MS = 1000;

/** `serve`: start the proxy, print where to point a charger, drain on SIGTERM/SIGINT. Resolves to an exit code. */
export async function runServe(argv: string[], out: (line: string) => void): Promise<number> {
  const flags = parseFlags(argv);
  if (flags.help) {
    out(SERVE_USAGE);
    return 0;
  }
  if (flags.positionals.length > 0) {
    out(`unexpected argument "${flags.positionals[0]}"\n\n${SERVE_USAGE}`);
    return 2;
  }
  const loaded = loadConfig({ file: flags.configFile, flags: flags.values });
  const log = createLogger({ level: loaded.logLevel, format: loaded.logFormat });
  const ignored = unknownEnvNames(process.env);
  if (ignored.length > 0 && cluster.isPrimary) log.warn({ event: 'unknown_env', names: ignored, didYouMean: meantEnvNames(ignored) }, 'ignored: OCPP_PROXY_ variables that are no configuration key (misspelt?)');
  const pathMismatch = publicUrlPathMismatch(loaded.publicUrl, loaded.pathPrefix);
  if (pathMismatch && cluster.isPrimary) log.warn({ event: 'public_url_path', publicUrl: loaded.publicUrl, pathPrefix: loaded.pathPrefix }, pathMismatch);
  if (loaded.workers > 1 && cluster.isPrimary) return runPrimary(loaded, argv, log);
  // A worker may be asked to drain while it is still starting (the primary got SIGTERM meanwhile):
  // Node drops an IPC message nobody listens for, so the request is noted from the start.
  let drainAskedEarly = false;
  const noteEarlyDrain = (m: unknown) => { if (isDrainMessage(m)) drainAskedEarly = true; };
  if (cluster.isWorker) process.on('message', noteEarlyDrain);
  // In every process that holds sessions, before the first: churn otherwise leaves old-space pages
  // fragmented (README, "Soak").
  if (loaded.heapCompaction) startHeapCompaction(loaded.heapCompactionIntervalS * 1000);
  const index = workerIndex();
  const config = workerConfig(loaded, index);
  const app = await startApp(config, { log: index > 1 ? log.child({ worker: index }) : log });
  const backend = withoutCredentials(config.backend);
  if (index === 1) {
    // A CSMS not listening yet is the first thing a new operator hits: every charger gets a 503.
    const csmsDown = await app.probeCsms().then(() => null, (err: Error) => (err instanceof ProbeError ? err : new ProbeError('unreachable', err.message)));
    if (csmsDown) {
      const down = CSMS_DOWN[csmsDown.kind];
      log[down.level]({ event: down.event, backend, err: csmsDown.message }, `${down.what}: ${down.consequence}`);
    }
    printBanner(out, app.addresses, app.tls.devCa, config.pathPrefix, { url: backend, down: csmsDown }, app.adminTokenFile, config.publicUrl);
  }
  log.info({ event: 'proxy_started', listen: app.addresses.tls, plainListen: app.addresses.plain, admin: app.addresses.admin, backend });
  if (index === 1 && app.tls.devCa) {
    // The banner says so on a terminal; a log collector sees only this.
    log.warn({ event: 'dev_pki', ca: path.resolve(app.tls.devCa) }, 'serving a generated development certificate (no tlsCert/tlsKey configured): not for production' +
      (config.redis ? '; each replica generates its own CA, so chargers that trust one replica\'s CA are refused by the others' : ''));
  }
  if (index === 1) reportAllocator(log);

  return new Promise<number>((resolve) => {
    let drainingSince = 0;
    const drain = (by: string) => {
      if (drainingSince) return;
      drainingSince = Date.now();
      log.info({ event: 'shutdown', signal: by }, 'draining');
      app.drain().then(() => resolve(0), (err: unknown) => {
        log.error({ event: 'drain_failed', err: String(err) });
        resolve(1);
      });
    };
    const onSignal = (signal: NodeJS.Signals) => {
      if (!drainingSince) return drain(signal);
      // A signal to the process group and the primary's drain request arrive together: only a
      // signal some time after the drain began is an operator asking again.
      if (Date.now() - drainingSince < SAME_SHUTDOWN_MS) return;
      log.warn({ event: 'second_signal', signal }, 'second signal: exiting now');
      resolve(1);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    if (cluster.isPrimary) {
      drainWhenNpmGoes(process.env, () => {
        if (drainingSince) return; // already draining: not a second request
        log.warn({ event: 'parent_gone' }, 'npm, which started the proxy, has exited: draining as on SIGTERM');
        drain('parent_gone');
      });
    }
    if (cluster.isWorker) {
      process.off('message', noteEarlyDrain);
      process.on('message', (m: unknown) => { if (isDrainMessage(m)) drain('primary'); });
      if (drainAskedEarly) drain('primary');
    }
  });
}

/** Says which C allocator runs the proxy, and what to do when it is glibc's (see allocator.ts). */
function reportAllocator(log: ReturnType<typeof createLogger>): void {
  const allocator = currentAllocator();
  if (allocator !== 'glibc') {
    log.info({ event: 'allocator', allocator });
    return;
  }
  log.warn({ event: 'allocator', allocator, hint: `preload jemalloc, as the container image does with its copy (Debian: apt-get install libjemalloc2, LD_PRELOAD=/usr/lib/<arch>-linux-gnu/libjemalloc.so.2 MALLOC_CONF=${JEMALLOC_MALLOC_CONF}): glibc malloc slows the relay after thousands of sessions close at once` },
    'running on glibc malloc');
}

/** A URL fit to print: any `user:password@` part masked. */
export function withoutCredentials(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = u.username ? '***' : '';
    u.password = u.password ? '***' : '';
    return u.toString();
  } catch {
    return url;
  }
}

/** What the start-up probe's finding means, for the log line and the banner alike. */
const CSMS_DOWN = {
  unreachable: { event: 'backend_unreachable', level: 'warn', banner: 'NOT REACHABLE', what: 'the CSMS is not reachable', consequence: 'chargers get 503 backend_unavailable until it listens' },
  untrusted: { event: 'backend_untrusted', level: 'error', banner: 'NOT TRUSTED', what: 'the CSMS certificate does not verify', consequence: 'chargers get 502 backend_untrusted until backendCa names its CA' },
  tls: { event: 'backend_tls_failed', level: 'error', banner: 'NO TLS HANDSHAKE', what: 'the CSMS does not complete a TLS handshake', consequence: 'chargers get 502 backend_error (is it a ws:// endpoint?)' },
} as const;

function printBanner(out: (line: string) => void, a: { tls: { address: string; port: number }; plain: { address: string; port: number } | null; admin: { address: string; port: number } }, devCa: string | null, prefix: string,
  csms: { url: string; down: ProbeError | null }, adminTokenFile: string | null, publicUrl: string | null): void {
  const host = (addr: string) => (addr === '0.0.0.0' || addr === '::' ? 'localhost' : addr.includes(':') ? `[${addr}]` : addr);
  out('');
  out('ocpp-security-proxy is running');
  out(`  Point chargers at:  wss://${host(a.tls.address)}:${a.tls.port}${prefix}<charger identity>`);
  // What chargers are told in a profile upgrade: worth seeing next to the listener, as a typo there strands them.
  if (publicUrl) out(`  Public URL:         ${publicUrl.replace(/\/?$/, '/')}<charger identity>  (publicUrl, sent in profile upgrades)`);
  if (a.plain) out(`  Profile 1 (plain):  ws://${host(a.plain.address)}:${a.plain.port}${prefix}<charger identity>`);
  out(`  Admin / metrics:    http://${host(a.admin.address)}:${a.admin.port}/metrics  (/healthz, /readyz)`);
  out(`  Admin API token:    ${adminTokenFile ? path.resolve(adminTokenFile) : 'from OCPP_PROXY_ADMIN_TOKEN'}  (Bearer, for /api/v1)`);
  out(`  Legacy CSMS:        ${csms.url.replace(/\/?$/, '/')}<charger identity>`);
  if (csms.down) {
    const down = CSMS_DOWN[csms.down.kind];
    out(`                      ${down.banner} now (${csms.down.message}): ${down.consequence}`);
    if (devCa && csms.down.kind === 'unreachable') out('                      (to try the proxy without one, in a checkout: "npm run csms" starts a stand-in on port 9000)');
  }
  if (devCa) {
    out(`  Trust this CA:      ${path.resolve(devCa)}`);
    out('');
    out('  !!!  WARNING: using a generated DEVELOPMENT PKI. NOT FOR PRODUCTION.  !!!');
    out('  !!!  Configure tlsCert/tlsKey (and clientCa) with your own certificates. !!!');
  }
  out('');
}
