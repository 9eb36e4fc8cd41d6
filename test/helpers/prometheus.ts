/**
 * Runs the real Prometheus server (Debian's `prometheus` package, /usr/bin/prometheus) against
 * loopback targets, for tests that check what a scraper actually sees.
 *
 * Each call gets its own config file and TSDB in a fresh temp dir and its own loopback port; `stop()`
 * ends that one process by its PID and removes the dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where Debian installs the binary (`apt-get install -y prometheus`). */
export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';

/** Options of {@link startPrometheus}. */
export interface PrometheusOptions {
  /** `host:port` of each admin listener to scrape at `/metrics`. */
  targets: string[];
  /** Scrape interval in ms (default 1000, at least 100). */
  scrapeIntervalMs?: number;
  /** How long to wait for the server to become ready (default 30 s). */
  startTimeoutMs?: number;
}

/** One series of an instant-vector query answer. */
export interface PromSample {
  metric: Record<string, string>;
  /** [unix seconds, value as text] exactly as Prometheus answers. */
  value: [number, string];
}

/** The `data` part of a `/api/v1/query` answer. */
export type PromQueryResult =
  | { resultType: 'vector'; result: PromSample[] }
  | { resultType: 'scalar' | 'string'; result: [number, string] }
  | { resultType: 'matrix'; result: { metric: Record<string, string>; values: [number, string][] }[] };

/** A running Prometheus server. */
export interface RunningPrometheus {
  /** Base URL, e.g. `http://127.0.0.1:39123`. */
  url: string;
  /** PID of the server process. */
  pid: number;
  /** Runs an instant query; rejects with the server's error text on a bad expression. */
  query(promql: string): Promise<PromQueryResult>;
  /** Runs an instant query and returns the vector's samples (rejects if the result is not a vector). */
  queryVector(promql: string): Promise<PromSample[]>;
  /**
   * Resolves once every target has been scraped, and that scrape stored, after `after` (default: the
   * time of the call), so values changed before the call are visible to {@link query}.
   */
  waitForScrape(opts?: { after?: number; timeoutMs?: number }): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL after 5 s) and removes its temp dir. Idempotent. */
  stop(): Promise<void>;
}

/** A Prometheus start or API failure; `reason` is a short label. */
export class PrometheusHarnessError extends Error {
  constructor(readonly reason: 'no_binary' | 'bad_option' | 'start_failed' | 'query_failed' | 'timeout', message: string) {
    super(message);
    this.name = 'PrometheusHarnessError';
  }
}

const TARGET_PATTERN = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** Starts Prometheus scraping `opts.targets` and resolves once its `/-/ready` answers 200. */
export async function startPrometheus(opts: PrometheusOptions): Promise<RunningPrometheus> {
  const interval = opts.scrapeIntervalMs ?? 1000;
  if (!Array.isArray(opts.targets) || opts.targets.length === 0) {
    throw new PrometheusHarnessError('bad_option', 'targets must list at least one host:port');
  }
  for (const target of opts.targets) {
    if (typeof target !== 'string' || !TARGET_PATTERN.test(target)) {
      throw new PrometheusHarnessError('bad_option', `target ${JSON.stringify(target)} is not host:port`);
    }
  }
  if (!Number.isInteger(interval) || interval < 100) {
    throw new PrometheusHarnessError('bad_option', 'scrapeIntervalMs must be an integer >= 100');
  }
  if (!existsSync(PROMETHEUS_BIN)) {
    throw new PrometheusHarnessError('no_binary',
      `${PROMETHEUS_BIN} not found: install it with "apt-get install -y prometheus" (or set PROMETHEUS_BIN)`);
  }

  const dir = mkdtempSync(join(tmpdir(), 'ocpp-prom-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'prometheus.yml');
  writeFileSync(configFile, renderConfig(opts.targets, interval));

  const child = spawn(PROMETHEUS_BIN, [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { stderr = (stderr + chunk).slice(-4000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    await terminate(child, exited);
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitReady(url, child, () => stderr, opts.startTimeoutMs ?? 30_000);
  } catch (err) {
    await stop();
    throw err;
  }

  const query = async (promql: string): Promise<PromQueryResult> => {
    const res = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data?: PromQueryResult; error?: string };
    if (body.status !== 'success' || body.data === undefined) {
      throw new PrometheusHarnessError('query_failed', `query ${JSON.stringify(promql)} failed: ${body.error ?? res.status}`);
    }
    return body.data;
  };

  const queryVector = async (promql: string): Promise<PromSample[]> => {
    const data = await query(promql);
    if (data.resultType !== 'vector') {
      throw new PrometheusHarnessError('query_failed', `query ${JSON.stringify(promql)} gave a ${data.resultType}`);
    }
    return data.result;
  };

  const waitForScrape = async (w: { after?: number; timeoutMs?: number } = {}): Promise<void> => {
    const afterSec = (w.after ?? Date.now()) / 1000;
    const deadline = Date.now() + (w.timeoutMs ?? Math.max(15_000, interval * 10));
    for (;;) {
      // `up` is appended in the same commit as the scraped samples, so its timestamp proves they are stored.
      const ups = await queryVector('timestamp(up)');
      if (ups.length >= opts.targets.length && ups.every((s) => Number(s.value[1]) >= afterSec)) return;
      if (Date.now() > deadline) {
        throw new PrometheusHarnessError('timeout', `no scrape of every target after ${new Date(afterSec * 1000).toISOString()}`);
      }
      await sleep(Math.min(200, interval / 2));
    }
  };

  return { url, pid: child.pid ?? -1, query, queryVector, waitForScrape, stop };
}

/** The scrape config: one job, every target, `/metrics`, the given interval. */
function renderConfig(targets: string[], intervalMs: number): string {
  const list = targets.map((t) => `'${t}'`).join(', ');
  return [
    'global:',
    `  scrape_interval: ${intervalMs}ms`,
    `  scrape_timeout: ${intervalMs}ms`,
    `  evaluation_interval: ${intervalMs}ms`,
    'scrape_configs:',
    '  - job_name: ocpp-security-proxy',
    '    metrics_path: /metrics',
    '    static_configs:',
    `      - targets: [${list}]`,
    '',
  ].join('\n');
}

async function waitReady(url: string, child: ChildProcess, stderr: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new PrometheusHarnessError('start_failed', `prometheus exited (${child.exitCode ?? child.signalCode}): ${stderr().trim()}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.status === 200) return;
    } catch {
      // Not listening yet.
    }
    await sleep(100);
  }
  throw new PrometheusHarnessError('timeout', `prometheus not ready after ${timeoutMs} ms: ${stderr().trim()}`);
}

async function terminate(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** A loopback TCP port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
