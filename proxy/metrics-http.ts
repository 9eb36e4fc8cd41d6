/**
 * The `/metrics` request handler for the admin listener (never the charger port).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ProxyMetrics } from './metrics';

/**
 * Answers `GET`/`HEAD /metrics` (query string ignored) with the registry's text exposition and returns
 * true; returns false, writing nothing, for any other path so the caller can route it elsewhere.
 * Other methods on `/metrics` get 405. A collection failure gets 500 with a fixed body (the error
 * itself is not echoed to the scraper).
 */
export async function handleMetricsRequest(
  metrics: ProxyMetrics, req: IncomingMessage, res: ServerResponse,
): Promise<boolean> {
  const path = (req.url ?? '').split('?', 1)[0];
  if (path !== '/metrics') return false;
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return true;
  }
  let body: string;
  try {
    body = await metrics.metricsText();
  } catch {
    res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n');
    return true;
  }
  res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
