import type { IncomingMessage, ServerResponse } from 'node:http';
import httpProxy from 'http-proxy';
import type { Logger } from './log';

/** Request handler for plain (non-upgrade) HTTP on the charger port. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The CSMS's HTTP origin derived from its WebSocket endpoint (ws→http, wss→https, path dropped). */
export function httpOriginOf(backend: string): string {
  const url = new URL(backend);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
}

/**
 * Non-upgrade requests: passed to the CSMS's HTTP origin when enabled (some CSMSs serve a status page
 * or firmware there), else 404. The charger's Authorization header is stripped either way, and its
 * X-Forwarded-* headers are replaced by the proxy's own.
 */
export function httpPassthrough(enabled: boolean, backend: string, log: Logger): HttpHandler {
  if (!enabled) {
    return (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not_found\n');
    };
  }
  const proxy = httpProxy.createProxyServer({ target: httpOriginOf(backend), xfwd: true, proxyTimeout: 30000 });
  proxy.on('error', (err, _req, res) => {
    log.warn({ event: 'http_passthrough_failed', err: err.message });
    const r = res as ServerResponse;
    if (!r.headersSent && typeof r.writeHead === 'function') r.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
    r.end?.('backend_unavailable\n');
  });
  return (req, res) => {
    delete req.headers.authorization;
    // The client's own X-Forwarded-* would reach the CSMS as if the proxy vouched for them: replaced
    // by what the proxy saw (xfwd), as on the WebSocket path.
    delete req.headers['x-forwarded-for'];
    delete req.headers['x-forwarded-proto'];
    delete req.headers['x-forwarded-port'];
    delete req.headers['x-forwarded-host'];
    proxy.web(req, res);
  };
}
