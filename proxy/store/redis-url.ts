/**
 * Redis connection URLs. Accepted forms (credentials percent-encoded; `s` scheme variants use TLS):
 *
 *   redis://[user:pass@]host[:port][/db]                     standalone (default port 6379)
 *   rediss://...                                             standalone over TLS
 *   redis-sentinel://[user:pass@]h1[:p1],h2[:p2]/master[/db][?sentinelUsername=u&sentinelPassword=p]
 *   rediss-sentinel://...                                    Sentinel (default port 26379); user/pass are the data nodes'
 *   redis-cluster://[user:pass@]h1[:p1],h2[:p2]              Cluster seed nodes (default port 6379)
 *   rediss-cluster://...
 *
 * IPv6 hosts are written in brackets: `[::1]:6379`. Parsing is pure so it is tested without Redis.
 * Error messages show the URL only with its password replaced by `***`.
 */
import { StoreError } from './errors';

/** A host and port. */
export interface HostPort {
  host: string;
  port: number;
}

interface Auth {
  username?: string;
  password?: string;
  tls: boolean;
}

/** Where and how to connect. */
export type RedisTarget =
  | ({ kind: 'standalone'; host: string; port: number; db: number } & Auth)
  | ({
      kind: 'sentinel';
      sentinels: HostPort[];
      masterName: string;
      db: number;
      sentinelUsername?: string;
      sentinelPassword?: string;
    } & Auth)
  | ({ kind: 'cluster'; nodes: HostPort[] } & Auth);

const SCHEMES: Record<string, { kind: RedisTarget['kind']; tls: boolean; port: number }> = {
  'redis:': { kind: 'standalone', tls: false, port: 6379 },
  'rediss:': { kind: 'standalone', tls: true, port: 6379 },
  'redis-sentinel:': { kind: 'sentinel', tls: false, port: 26379 },
  'rediss-sentinel:': { kind: 'sentinel', tls: true, port: 26379 },
  'redis-cluster:': { kind: 'cluster', tls: false, port: 6379 },
  'rediss-cluster:': { kind: 'cluster', tls: true, port: 6379 },
};

/**
 * Parse a Redis URL.
 * @throws StoreError `redis_url_invalid` with the problem and the redacted URL.
 */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^([a-z-]+:)\/\/(?:([^@/?#]*)@)?([^/?#]+)(\/[^?#]*)?(\?[^#]*)?$/i.exec(url ?? '');
  if (!m) fail(url, 'not a URL of the form scheme://[user:pass@]host[:port][/...]');
  const [, rawScheme, userinfo, hostList, rawPath, rawQuery] = m;
  const scheme = SCHEMES[rawScheme.toLowerCase()];
  if (!scheme) fail(url, `unknown scheme ${rawScheme}// (use ${Object.keys(SCHEMES).map((s) => s + '//').join(', ')})`);

  const auth: Auth = { tls: scheme.tls };
  if (userinfo !== undefined && userinfo !== '') {
    const colon = userinfo.indexOf(':');
    const user = decode(url, colon < 0 ? userinfo : userinfo.slice(0, colon));
    const pass = colon < 0 ? undefined : decode(url, userinfo.slice(colon + 1));
    if (user) auth.username = user;
    if (pass) auth.password = pass;
  }
  const hosts = hostList.split(',').map((h) => parseHost(url, h, scheme.port));
  const segments = (rawPath ?? '').split('/').filter((s) => s !== '').map((s) => decode(url, s));
  const query = new URLSearchParams(rawQuery ?? '');

  if (scheme.kind === 'standalone') {
    if (hosts.length !== 1) fail(url, 'a standalone URL has exactly one host (use redis-cluster:// or redis-sentinel:// for several)');
    if (segments.length > 1) fail(url, 'path must be at most a database number');
    return { kind: 'standalone', ...hosts[0], db: parseDb(url, segments[0]), ...auth };
  }
  if (scheme.kind === 'sentinel') {
    if (segments.length < 1 || segments.length > 2) fail(url, 'Sentinel URL needs the master name as path: /mymaster[/db]');
    const target: RedisTarget = { kind: 'sentinel', sentinels: hosts, masterName: segments[0], db: parseDb(url, segments[1]), ...auth };
    const su = query.get('sentinelUsername');
    const sp = query.get('sentinelPassword');
    if (su) target.sentinelUsername = su;
    if (sp) target.sentinelPassword = sp;
    return target;
  }
  if (segments.length > 0) fail(url, 'Cluster URLs take no path (Cluster has only database 0)');
  return { kind: 'cluster', nodes: hosts, ...auth };
}

/** The URL with any password (userinfo or query) replaced by `***`, safe for logs. */
export function redactRedisUrl(url: string): string {
  return String(url)
    .replace(/^([a-z-]+:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@')
    .replace(/([?&][a-z]*password=)[^&#]*/gi, '$1***');
}

/** A one-line description of a target without secrets, e.g. for a startup log. */
export function describeRedisTarget(t: RedisTarget): string {
  const list = (hs: HostPort[]) => hs.map((h) => (h.host.includes(':') ? `[${h.host}]` : h.host) + ':' + h.port).join(',');
  const tls = t.tls ? ' tls' : '';
  if (t.kind === 'standalone') return `redis standalone ${list([t])} db ${t.db}${tls}`;
  if (t.kind === 'sentinel') return `redis sentinel ${list(t.sentinels)} master ${t.masterName} db ${t.db}${tls}`;
  return `redis cluster ${list(t.nodes)}${tls}`;
}

function parseHost(url: string, text: string, defaultPort: number): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::(\d+))?$/.exec(text);
  if (!m) fail(url, `bad host "${text}"`);
  const port = m[3] === undefined ? defaultPort : Number(m[3]);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(url, `bad port in "${text}"`);
  return { host: m[1] ?? m[2], port };
}

function parseDb(url: string, seg: string | undefined): number {
  if (seg === undefined) return 0;
  if (!/^\d{1,5}$/.test(seg)) fail(url, `database must be a number, got "${seg}"`);
  return Number(seg);
}

function decode(url: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    fail(url, 'bad percent-encoding');
  }
}

function fail(url: string, problem: string): never {
  throw new StoreError('redis_url_invalid', `invalid Redis URL ${redactRedisUrl(url)}: ${problem}`);
}
