import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HostPort } from './config';
import type { Logger } from './log';
import { listenAt } from './listen-at';

/** A readiness check: resolves when fine, rejects (or resolves false) with why not. */
export type ReadinessCheck = () => Promise<boolean | void>;

/** An extra route on the admin listener (the admin API adds its routes this way). */
export type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean | Promise<boolean>;

/** What the admin listener serves. */
export interface AdminOptions {
  listen: HostPort;
  log: Logger;
  /** Named checks for /readyz; each bounded by `checkTimeoutMs`. */
  readiness: Record<string, ReadinessCheck>;
  checkTimeoutMs?: number;
  /** Prometheus exposition, when metrics are enabled. */
  metrics?: { contentType: string; text: () => Promise<string> };
  /** Further routes, tried in order before the 404. */
  routes?: AdminRoute[];
}

/**
 * The admin listener: `/healthz` (the process answers), `/readyz` (listeners, store and CSMS within
 * a bounded probe), `/metrics`, and any routes added by the admin API. Separate from the charger port.
 */
export class AdminServer {
  private server: http.Server | null = null;
  constructor(private readonly opts: AdminOptions) {}

  async start(): Promise<AddressInfo> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.opts.log.error({ event: 'admin_error', err: String(err) });
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'internal_error' }));
      });
    });
    await listenAt(this.server, this.opts.listen, 'adminListen');
    return this.server.address() as AddressInfo;
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    if (s.listening) await new Promise<void>((r) => s.close(() => r()));
  }

  /** Runs every readiness check with a timeout; returns per-check results. */
  async readiness(): Promise<{ ready: boolean; checks: Record<string, string> }> {
    const timeout = this.opts.checkTimeoutMs ?? 2000;
    const checks: Record<string, string> = {};
    await Promise.all(Object.entries(this.opts.readiness).map(async ([name, check]) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const ok = await Promise.race([
          check(),
          new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error('timed out')), timeout); }),
        ]);
        checks[name] = ok === false ? 'failing' : 'ok';
      } catch (err) {
        checks[name] = `failing: ${(err as Error).message}`.slice(0, 200);
      } finally {
        clearTimeout(timer);
      }
    }));
    return { ready: Object.values(checks).every((v) => v === 'ok'), checks };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://admin');
    } catch {
      // e.g. `GET //`, read as a URL without a host: the client's mistake, not a 500 of ours.
      return json(res, 400, { error: 'bad_request', message: 'the request target is not a valid path' });
    }
    if (req.method === 'GET' && url.pathname === '/healthz') {
      return json(res, 200, { status: 'ok' });
    }
    if (req.method === 'GET' && url.pathname === '/readyz') {
      const r = await this.readiness();
      return json(res, r.ready ? 200 : 503, { status: r.ready ? 'ready' : 'not_ready', checks: r.checks });
    }
    if (req.method === 'GET' && url.pathname === '/metrics' && this.opts.metrics) {
      const text = await this.opts.metrics.text();
      res.writeHead(200, { 'content-type': this.opts.metrics.contentType });
      res.end(text);
      return;
    }
    for (const route of this.opts.routes ?? []) if (await route(req, res, url)) return;
    json(res, 404, { error: 'not_found' });
  }
}

/** Writes a JSON answer. */
export function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body) + '\n');
}
