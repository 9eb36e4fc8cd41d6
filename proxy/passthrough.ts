import type { IncomingMessage, ServerResponse } from 'node:http';
import type httpProxy from 'http-proxy';
import type { BackendTrust } from './backend-trust';
import type { Logger } from './log';

/** Request handler for plain (non-upgrade) HTTP on the charger port. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** The CSMS's HTTP origin derived from its WebSocket endpoint (ws→http, wss→https, path dropped). */
export function httpOriginOf(backend: string): string {
  const url = new URL(backend);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
}

/** Who sent a passed-through request, as the WebSocket path decides it (PROXY protocol, trusted fronts). */
export interface PassthroughForwarding {
  /** Send X-Forwarded-For / X-Forwarded-Proto (config forwardedHeaders). */
  headers: boolean;
  /** The client's address and whether it came over TLS (at the proxy or at a trusted front). */
  describe(req: IncomingMessage): { for: string; proto: 'https' | 'http' };
}

/**
 * Headers a client could write to pass for someone else at the CSMS: replaced by the proxy's own
 * X-Forwarded-For / -Proto, or dropped. The forwarded client certificate headers too: only a
 * trusted front may send them, and only to the proxy.
 */
const CLIENT_CLAIMS = ['x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-host', 'forwarded', 'x-real-ip', 'x-forwarded-client-cert', 'client-cert', 'client-cert-chain'];

/**
 * Non-upgrade requests: passed to the CSMS's HTTP origin when enabled (some CSMSs serve a status page
 * or firmware there), else 404. The charger's Authorization header is stripped either way, and what
 * it may claim about itself (X-Forwarded-*, Forwarded, forwarded certificates) is replaced by what
 * the proxy established, as on the WebSocket path. An https:// origin must present what `trust`
 * (backendCa) accepts, as the WebSocket dials do.
 */
export function httpPassthrough(enabled: boolean, backend: string, log: Logger, forwarding: PassthroughForwarding, certHeader: string | null = null, trust: BackendTrust | null = null): HttpHandler {
  if (!enabled) {
    return (_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not_found\n');
    };
  }
  // Loaded only when passthrough is on (off by default): it and follow-redirects are a dozen modules.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const proxy = (require('http-proxy') as typeof httpProxy).createProxyServer({ target: httpOriginOf(backend), xfwd: false, proxyTimeout: 30000 });
  const claims = certHeader ? [...CLIENT_CLAIMS, certHeader.toLowerCase()] : CLIENT_CLAIMS;
  proxy.on('error', (err, _req, res) => {
    log.warn({ event: 'http_passthrough_failed', err: err.message });
    const r = res as ServerResponse;
    if (!r.headersSent && typeof r.writeHead === 'function') r.writeHead(502, { 'content-type': 'text/plain; charset=utf-8' });
    r.end?.('backend_unavailable\n');
  });
  return (req, res) => {
    const client = forwarding.headers ? forwarding.describe(req) : null;
    delete req.headers.authorization;
    for (const h of claims) delete req.headers[h];
    if (client) {
      req.headers['x-forwarded-for'] = client.for;
      req.headers['x-forwarded-proto'] = client.proto;
    }
    proxy.web(req, res, trust ? { agent: trust.agent() } : {});
  };
}
