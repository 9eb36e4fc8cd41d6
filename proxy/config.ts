import { readFileSync } from 'node:fs';
import type * as Yaml from 'yaml';
import { CONFIG_KEYS, envName, flagName, type KeyDef } from './config-keys';
import { closestName } from './did-you-mean';

/** A listen address. */
export interface HostPort { host: string; port: number }

/** Which WebSocket implementation a session's legs run on: the proxy's own (`proxy/wire/`) or `ws`. */
export type Framing = 'builtin' | 'ws';

/** The validated configuration of one proxy process. See config-keys.ts for each key's meaning. */
export interface ProxyConfig {
  listen: HostPort;
  plainListen: HostPort | null;
  adminListen: HostPort;
  backend: string;
  pathPrefix: string;
  tlsCert: string[];
  tlsKey: string[];
  clientCa: string | null;
  devPki: boolean;
  dataDir: string;
  subprotocols: string[];
  backendUsername: string | null;
  backendPasswordFile: string | null;
  backendCa: string | null;
  forwardedHeaders: boolean;
  backendTimeoutMs: number;
  maxFrameBytes: number;
  framing: Framing;
  handshakeTimeoutMs: number;
  pingIntervalMs: number;
  callTimeoutMs: number;
  maxHeldFrames: number;
  workers: number;
  heapCompaction: boolean;
  heapCompactionIntervalS: number;
  maxSessions: number;
  maxPendingUpgrades: number;
  maxConnectionsPerAddress: number;
  proxyProtocol: boolean;
  trustedProxyCidrs: string[];
  proxyProtocolTimeoutMs: number;
  forwardedClientCertHeader: string | null;
  trustedForwarderCidrs: string[];
  tlsSessionTimeoutS: number;
  tlsTicketKeyFile: string | null;
  httpPassthrough: boolean;
  drainGraceMs: number;
  drainJitterMs: number;
  redis: string | null;
  redisKeyPrefix: string;
  secretFile: string | null;
  adminTokenFile: string | null;
  reportOnly: boolean;
  autoEnrol: boolean;
  organization: string | null;
  lockoutThreshold: number;
  addressLockoutThreshold: number;
  failureWindowMs: number;
  lockoutBaseMs: number;
  lockoutMaxMs: number;
  lockoutSparesFamiliarAddress: boolean;
  credentialCacheTtlMs: number;
  publicUrl: string | null;
  rotation: boolean;
  passwordMaxAgeDays: number;
  rotationGraceMs: number;
  rotationRetryMs: number;
  bootWaitMs: number;
  caDir: string | null;
  chargerCertDays: number;
  renewBeforeDays: number;
  localSecurityEvents: 'auto' | 'always' | 'never';
  checkSerialNumber: boolean;
  guardCsmsCalls: boolean;
  logLevel: string;
  logFormat: 'json' | 'pretty';
}

/** A configuration problem; the message always names the offending key and where it came from. */
export class ConfigError extends Error {
  readonly reason = 'config_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Where one layer of settings came from, for error messages. */
type Layer = { source: string; values: Record<string, unknown> };

const KEYS: readonly KeyDef[] = CONFIG_KEYS;
const BY_NAME = new Map(KEYS.map((k) => [k.key, k]));

/**
 * Builds the configuration from, in rising precedence: defaults, a YAML/JSON file, `OCPP_PROXY_*`
 * environment variables, then command-line values (already parsed to camelCase keys).
 * Throws {@link ConfigError} naming the bad key.
 */
export function loadConfig(opts: { file?: string | null; env?: NodeJS.ProcessEnv; flags?: Record<string, unknown> } = {}): ProxyConfig {
  const layers: Layer[] = [];
  if (opts.file) layers.push({ source: `config file ${opts.file}`, values: readConfigFile(opts.file) });
  layers.push({ source: 'environment', values: fromEnv(opts.env ?? process.env) });
  if (opts.flags) layers.push({ source: 'command line', values: opts.flags });

  const out: Record<string, unknown> = {};
  // Defaults go through the same coercion, so `listen` is a HostPort whether set or not.
  for (const def of KEYS) out[def.key] = def.default === null ? null : coerce(def, def.default, 'defaults');
  for (const layer of layers) {
    for (const [name, raw] of Object.entries(layer.values)) {
      const def = BY_NAME.get(name);
      if (!def) {
        const meant = closestName(name, BY_NAME.keys());
        throw new ConfigError(`unknown configuration key "${name}" in ${layer.source}${meant ? ` (did you mean "${meant}"?)` : ''}`);
      }
      if (raw === undefined) continue;
      out[name] = coerce(def, raw, layer.source);
    }
  }
  return crossCheck(out as unknown as ProxyConfig);
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let parsed: unknown;
  try {
    // Loaded here, not at the top: a proxy configured by flags and environment never needs it (about
    // 70 modules). YAML is a superset of JSON: one parser serves both.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    parsed = (require('yaml') as typeof Yaml).parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (parsed === null || parsed === undefined) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw new ConfigError(`config file ${file} must hold a mapping of keys to values`);
  return parsed as Record<string, unknown>;
}

/** `OCPP_PROXY_*` variables read elsewhere that are not configuration keys: secrets, and a worker's index. */
const OTHER_ENV_NAMES = new Set(['OCPP_PROXY_SECRET', 'OCPP_PROXY_ADMIN_TOKEN', 'OCPP_PROXY_BACKEND_PASSWORD', 'OCPP_PROXY_WORKER_INDEX']);

/**
 * `OCPP_PROXY_*` variables of `env` the proxy does not read, most likely misspelt keys. Not an error
 * as an unknown key in a file or a flag is: an environment is often shared with other programs.
 */
export function unknownEnvNames(env: NodeJS.ProcessEnv): string[] {
  const known = new Set(OTHER_ENV_NAMES);
  for (const def of KEYS) for (const name of [envName(def.key), ...(def.envAliases ?? [])]) known.add(name);
  return Object.keys(env).filter((name) => name.startsWith('OCPP_PROXY_') && !known.has(name)).sort();
}

/** For each unknown `OCPP_PROXY_*` name, the variable it most likely meant (omitted when none is near). */
export function meantEnvNames(unknown: string[]): Record<string, string> {
  const known = KEYS.map((def) => envName(def.key)).concat([...OTHER_ENV_NAMES]);
  const meant: Record<string, string> = {};
  for (const name of unknown) {
    const near = closestName(name, known);
    if (near) meant[name] = near;
  }
  return meant;
}

function fromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const def of KEYS) {
    for (const name of [envName(def.key), ...(def.envAliases ?? [])]) {
      const v = env[name];
      if (v !== undefined && v !== '') {
        values[def.key] = v;
        break;
      }
    }
  }
  return values;
}

function coerce(def: KeyDef, raw: unknown, source: string): unknown {
  const bad = (why: string) => new ConfigError(`invalid value for "${def.key}" (--${flagName(def.key)} / ${envName(def.key)}) from ${source}: ${why}`);
  switch (def.type) {
    case 'string':
      if (raw === null) return null;
      if (typeof raw !== 'string' && typeof raw !== 'number') throw bad('expected a string');
      return String(raw);
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(n)) throw bad('expected an integer');
      if (def.min !== undefined && n < def.min) throw bad(`must be at least ${def.min}`);
      if (def.max !== undefined && n > def.max) throw bad(`must be at most ${def.max}`);
      return n;
    }
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (typeof raw === 'string' && /^(true|1|yes|on)$/i.test(raw)) return true;
      if (typeof raw === 'string' && /^(false|0|no|off)$/i.test(raw)) return false;
      throw bad('expected true or false');
    case 'list': {
      const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : null;
      if (!list || list.some((x) => typeof x !== 'string')) throw bad('expected a list of strings (comma-separated in env)');
      return (list as string[]).map((s) => s.trim()).filter((s) => s.length > 0);
    }
    case 'hostport':
      if (raw === null || raw === '' || raw === 'off') {
        // Only listeners that are off by default (plainListen) can be turned off.
        if (def.default !== null) throw bad('this listener cannot be turned off');
        return null;
      }
      return parseHostPort(String(raw), bad);
    case 'url': {
      if (typeof raw !== 'string') throw bad('expected a URL');
      let url: URL;
      try { url = new URL(raw); } catch { throw bad('not a valid URL'); }
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw bad('must start with ws:// or wss://');
      return raw.replace(/\/+$/, '');
    }
    case 'enum':
      if (typeof raw !== 'string' || !def.values?.includes(raw)) throw bad(`must be one of ${def.values?.join(', ')}`);
      return raw;
  }
}

/** Parses `host:port`, `[v6]:port` or a bare port (all interfaces). */
export function parseHostPort(text: string, bad: (why: string) => Error = (w) => new ConfigError(w)): HostPort {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim()) ?? /^()()(\d{1,5})$/.exec(text.trim());
  if (!m) throw bad(`expected host:port, got "${text}"`);
  const port = Number(m[3]);
  if (port > 65535) throw bad(`port ${port} out of range`);
  return { host: m[1] || m[2] || '0.0.0.0', port };
}

/**
 * `publicUrl` goes to 2.x chargers in SetNetworkProfile when they move to Profile 2 or 3, and the
 * charger adds its identity to it: a URL they could not connect with would strand them there.
 */
function checkPublicUrl(value: string): void {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`"publicUrl" is not a URL: give the wss:// URL chargers reach the proxy at, e.g. wss://ocpp.example.com/ocpp`);
  }
  if (url.protocol !== 'wss:') throw new ConfigError(`"publicUrl" must be a wss:// URL: chargers are moved there to Profile 2 or 3, which need TLS`);
  if (url.search || url.hash || url.username || url.password) throw new ConfigError('"publicUrl" must not carry a query, a fragment or credentials');
  // SetNetworkProfile's ocppCsmsUrl holds 512 characters in 2.0.1 (2000 in 2.1): a longer one is refused by the charger.
  if (value.length > 512) throw new ConfigError(`"publicUrl" is ${value.length} characters; OCPP 2.0.1 chargers take at most 512 (SetNetworkProfile ocppCsmsUrl)`);
}

/**
 * A `publicUrl` whose path is not `pathPrefix`: a 2.x charger moved there connects to
 * `<path>/<identity>`, which this proxy refuses unless a front rewrites the path. Legitimate behind
 * such a front, so a warning rather than a refusal; null when the paths agree (or there is no URL).
 */
export function publicUrlPathMismatch(publicUrl: string | null, pathPrefix: string): string | null {
  if (publicUrl === null) return null;
  const path = new URL(publicUrl).pathname.replace(/\/+$/, '');
  const prefix = pathPrefix.replace(/\/+$/, '');
  return path === prefix ? null : `chargers moved to publicUrl connect to ${path}/<identity>, but this proxy serves ${prefix}/<identity> (pathPrefix): fine only if a front rewrites the path`;
}

/**
 * Two listeners on one port that cannot both bind would fail at start with a less helpful message:
 * the same host; an IPv4 wildcard with an IPv4 address; `::` (dual-stack in Node) with anything.
 */
function checkDistinctListeners(c: ProxyConfig): void {
  const clash = (a: string, b: string) => {
    if (a === b || a === '::' || b === '::' || a === '' || b === '') return true;
    const v4 = (h: string) => !h.includes(':');
    return (a === '0.0.0.0' && v4(b)) || (b === '0.0.0.0' && v4(a));
  };
  const named: [string, HostPort | null][] = [['listen', c.listen], ['plainListen', c.plainListen], ['adminListen', c.adminListen]];
  for (let i = 0; i < named.length; i++) {
    for (let j = i + 1; j < named.length; j++) {
      const [a, at] = named[i]!;
      const [b, bt] = named[j]!;
      if (!at || !bt || at.port === 0 || at.port !== bt.port) continue;
      if (clash(at.host, bt.host)) {
        throw new ConfigError(`"${a}" and "${b}" both use port ${at.port}: give each listener a port of its own`);
      }
    }
  }
}

function crossCheck(c: ProxyConfig): ProxyConfig {
  if (c.tlsCert.length !== c.tlsKey.length) {
    throw new ConfigError(`"tlsCert" and "tlsKey" must be given the same number of times (got ${c.tlsCert.length} and ${c.tlsKey.length})`);
  }
  if (c.tlsCert.length > 2) throw new ConfigError('"tlsCert" may be given at most twice (an RSA and an ECDSA certificate)');
  if (!c.pathPrefix.startsWith('/')) throw new ConfigError('"pathPrefix" must start with "/"');
  if (!c.pathPrefix.endsWith('/')) c.pathPrefix += '/';
  if (c.publicUrl !== null) checkPublicUrl(c.publicUrl);
  if (c.backendCa !== null && new URL(c.backend).protocol !== 'wss:') {
    throw new ConfigError('"backendCa" is set but "backend" is a ws:// URL, which uses no TLS: give a wss:// backend, or drop backendCa');
  }
  checkDistinctListeners(c);
  const known = new Set(['ocpp1.2', 'ocpp1.5', 'ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1']);
  for (const p of c.subprotocols) if (!known.has(p)) throw new ConfigError(`"subprotocols" contains unknown OCPP subprotocol "${p}"`);
  if (c.subprotocols.length === 0) throw new ConfigError('"subprotocols" must not be empty');
  // A certificate born inside the renewal window would be renewed at every connection, each renewal
  // issuing another such certificate and a reconnect to use it: a loop.
  if (c.renewBeforeDays >= c.chargerCertDays) {
    throw new ConfigError(`"renewBeforeDays" (${c.renewBeforeDays}) must be less than "chargerCertDays" (${c.chargerCertDays}): every certificate signed would already be due for renewal`);
  }
  return c;
}
