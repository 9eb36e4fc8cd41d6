/**
 * The admin HTTP API under `/api/v1` on the admin listener: chargers, factory defaults,
 * revocations, the audit stream and live sessions, as JSON. Every route needs
 * `Authorization: Bearer <token>` (401 + `WWW-Authenticate: Bearer` otherwise). Errors are
 * `{error: <reason label>, message}`. Request bodies are limited to 1 MiB (413). Passwords go in
 * as `password` (UTF-8 text) or `passwordBase64` (binary OCPP 1.6 keys) and never come back out.
 */
import type http from 'node:http';
import type { AdminRoute } from './admin';
import { json } from './admin';
import { LogBudget } from './log-budget';
import { checkBearer } from './admin-token';
import { ChargerAdmin, ChargerAdminError, parseOcppInterface, parseProfile, type ChargerChanges, type ChargerInput } from './chargers';
import type { Logger } from './log';
import { StoreError } from './store/errors';

/** A live charger session, as the admin API lists it. */
export interface SessionSummary {
  identity: string;
  profile: 1 | 2 | 3;
  subprotocol: string;
  /** ISO 8601 time the session started. */
  since: string;
  frames: { charger_to_csms: number; csms_to_charger: number };
  /** Which proxy replica holds the session. */
  replica: string;
  remoteAddress?: string;
}

/** The running proxy's sessions (implemented by the core; absent when the API runs without a proxy). */
export interface LiveSessions {
  list(): SessionSummary[];
  /** Closes the charger's session (WebSocket close `code`); false when it has none. */
  disconnect(identity: string, code?: number): boolean;
}

/** Options of {@link adminApiRoutes}. */
export interface AdminApiOptions {
  admin: ChargerAdmin;
  /** The bearer token (see admin-token.ts). */
  token: string;
  sessions?: LiveSessions;
  log: Logger;
  /** Largest request body in bytes; default 1 MiB. */
  maxBodyBytes?: number;
}

/** An HTTP-level refusal: status, reason label, message. */
class ApiError extends Error {
  constructor(readonly status: number, readonly reason: string, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

type Ctx = { req: http.IncomingMessage; url: URL; params: string[]; body: () => Promise<Buffer>; json: () => Promise<Record<string, unknown>> };
type Handler = (ctx: Ctx) => Promise<[number, unknown]>;
type Route = { method: string; pattern: RegExp; handler: Handler };

const PREFIX = '/api/v1';
/** Unauthorised requests logged one by one per minute; the rest are counted in the next line logged. */
const UNAUTHORIZED_LOGGED_PER_MINUTE = 20;
const STATUS: Record<string, number> = { not_found: 404, already_exists: 409, rotation_disabled: 409, upgrade_already_sent: 409, import_invalid: 422, lockouts_elsewhere: 409 };

/** Builds the admin API as one route for `AdminServer({routes})`; it claims every path under /api/v1. */
export function adminApiRoutes(opts: AdminApiOptions): AdminRoute {
  const routes = buildRoutes(opts);
  const maxBody = opts.maxBodyBytes ?? 1024 * 1024;
  // Anyone who reaches the port can send requests without a token: their lines are bounded.
  const refusalLines = new LogBudget(UNAUTHORIZED_LOGGED_PER_MINUTE, 60_000);
  return async (req, res, url) => {
    if (url.pathname !== PREFIX && !url.pathname.startsWith(PREFIX + '/')) return false;
    const path = url.pathname.slice(PREFIX.length) || '/';
    if (!checkBearer(req.headers.authorization, opts.token)) {
      const verdict = refusalLines.take();
      if (verdict.log) {
        opts.log.warn({ event: 'admin_api_unauthorized', method: req.method, path, remote: req.socket.remoteAddress,
          ...(verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {}) });
      }
      res.setHeader('www-authenticate', 'Bearer realm="ocpp-security-proxy"');
      json(res, 401, { error: 'unauthorized', message: 'a valid bearer token is required' });
      req.resume();
      return true;
    }
    let status = 500;
    try {
      const matching = routes.map((r) => ({ r, m: r.pattern.exec(path) })).filter((x) => x.m !== null);
      const hit = matching.find((x) => x.r.method === req.method);
      if (!hit) {
        if (matching.length === 0) throw new ApiError(404, 'not_found', `no API route ${path}`);
        res.setHeader('allow', [...new Set(matching.map((x) => x.r.method))].join(', '));
        throw new ApiError(405, 'method_not_allowed', `${req.method} is not allowed on ${path}`);
      }
      const params = hit.m!.slice(1).map((p) => decodeParam(p!));
      let body: Promise<Buffer> | null = null;
      const readBody = () => (body ??= readLimited(req, maxBody));
      const ctx: Ctx = { req, url, params, body: readBody, json: async () => parseJson(await readBody()) };
      const [code, payload] = await hit.r.handler(ctx);
      status = code;
      if (code === 204) { res.writeHead(204, { 'cache-control': 'no-store' }); res.end(); } else json(res, code, payload);
    } catch (err) {
      const e = toApiError(err);
      status = e.status;
      if (e.status >= 500) opts.log.error({ event: 'admin_api_error', method: req.method, path, reason: e.reason, err: String(err) });
      json(res, e.status, { error: e.reason, message: e.message, ...e.extra });
      if (!req.readableEnded) req.resume();
    }
    if (req.method !== 'GET') opts.log.info({ event: 'admin_api', method: req.method, path, status });
    return true;
  };
}

function buildRoutes({ admin, sessions }: AdminApiOptions): Route[] {
  // Every answer about one charger says whether it is connected here, as GET does.
  const withSession = <V extends { identity: string }>(view: V) => ({ ...view, session: sessions?.list().find((s) => s.identity === view.identity) ?? null });
  const r = (method: string, path: string, handler: Handler): Route =>
    ({ method, pattern: new RegExp('^' + path.replace(/:[a-z]+/g, '([^/]+)') + '/?$'), handler });
  const needSessions = (): LiveSessions => {
    if (!sessions) throw new ApiError(503, 'sessions_unavailable', 'live sessions are not available in this process');
    return sessions;
  };
  return [
    r('GET', '/chargers', async ({ url }) => [200, await admin.list({ cursor: url.searchParams.get('cursor') ?? undefined, limit: intParam(url, 'limit') })]),
    r('POST', '/chargers', async (c) => {
      const m = await admin.add(chargerInput(await c.json()));
      return [201, { ...m.charger, warnings: m.warnings }];
    }),
    r('POST', '/chargers/import', async (c) => {
      const type = String(c.req.headers['content-type'] ?? '');
      if (!/^text\/(csv|plain)\b/i.test(type)) throw new ApiError(415, 'unsupported_media_type', 'send the CSV with Content-Type: text/csv');
      const allow = c.url.searchParams.get('allowShortPasswords') === 'true';
      return [200, await admin.importCsv(await c.body(), { allowShortPasswords: allow })];
    }),
    r('GET', '/chargers/:id', async ({ params }) => [200, withSession(await admin.show(params[0]!))]),
    r('PATCH', '/chargers/:id', async (c) => {
      const m = await admin.set(c.params[0]!, chargerChanges(await c.json()));
      return [200, { ...withSession(m.charger), warnings: m.warnings }];
    }),
    r('DELETE', '/chargers/:id', async ({ params }) => { await admin.remove(params[0]!); return [204, null]; }),
    r('POST', '/chargers/:id/block', async ({ params }) => [200, withSession(await admin.block(params[0]!))]),
    r('POST', '/chargers/:id/unblock', async ({ params }) => [200, withSession(await admin.unblock(params[0]!))]),
    r('POST', '/chargers/:id/unlock', async ({ params }) => [200, withSession(await admin.unlock(params[0]!))]),
    r('POST', '/addresses/:address/unlock', async ({ params }) => [200, await admin.unlockAddress(params[0]!)]),
    r('POST', '/chargers/:id/rotate', async ({ params }) => [202, withSession(await admin.requestRotation(params[0]!))]),
    r('POST', '/chargers/:id/upgrade', async (c) => {
      const body = await c.json();
      onlyFields(body, UPGRADE_FIELDS);
      const network = body.ocppInterface === undefined || body.ocppInterface === null ? undefined : parseOcppInterface(body.ocppInterface);
      return [202, withSession(await admin.requestProfileUpgrade(c.params[0]!, parseProfile(body.profile), network))];
    }),
    r('DELETE', '/chargers/:id/upgrade', async ({ params }) => [200, withSession(await admin.cancelProfileUpgrade(params[0]!))]),
    r('GET', '/factory-defaults', async () => [200, { items: await admin.listFactoryDefaults() }]),
    r('POST', '/factory-defaults', async (c) => {
      const b = await c.json();
      const match = { prefix: optString(b, 'prefix'), batch: optString(b, 'batch') };
      const password = secret(b, 'password');
      if (!password) throw new ApiError(400, 'bad_input', 'password or passwordBase64 is required');
      return [201, { id: await admin.addFactoryDefault(match, password), match }];
    }),
    r('DELETE', '/factory-defaults/:id', async ({ params }) => { await admin.removeFactoryDefault(params[0]!); return [204, null]; }),
    r('GET', '/revocations', async () => [200, { items: await admin.listRevoked() }]),
    r('POST', '/revocations', async (c) => {
      const b = await c.json();
      const serial = optString(b, 'serial');
      if (!serial) throw new ApiError(400, 'bad_input', 'serial is required');
      return [201, { serialHex: await admin.revoke(serial, optString(b, 'reason')) }];
    }),
    r('DELETE', '/revocations/:serial', async ({ params }) => { await admin.unrevoke(params[0]!); return [204, null]; }),
    r('GET', '/audit', async ({ url }) => [200, { items: await admin.audit(intParam(url, 'limit') ?? 50) }]),
    r('GET', '/sessions', async () => [200, { items: needSessions().list() }]),
    r('DELETE', '/sessions/:id', async ({ params, url }) => {
      const code = intParam(url, 'code');
      if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) throw new ApiError(400, 'bad_input', 'code must be 1000 or 3000..4999');
      if (!needSessions().disconnect(params[0]!, code)) throw new ApiError(404, 'not_found', `charger ${params[0]} has no live session here`);
      return [202, { disconnected: params[0] }];
    }),
  ];
}

/** Maps a JSON body to `ChargerAdmin.add` input. */
function chargerInput(b: Record<string, unknown>): ChargerInput {
  const identity = optString(b, 'identity');
  if (!identity) throw new ApiError(400, 'bad_input', 'identity is required');
  const c = chargerChanges(b);
  const input: ChargerInput = { identity };
  for (const [k, v] of Object.entries(c)) if (v !== null && v !== undefined) (input as unknown as Record<string, unknown>)[k] = v;
  return input;
}

/** A misspelt field would otherwise be ignored in silence (and its default used): 400 instead. */
function onlyFields(b: Record<string, unknown>, known: ReadonlySet<string>): void {
  const unknown = Object.keys(b).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new ApiError(400, 'bad_input', `unknown field(s): ${unknown.join(', ')}`);
}

const UPGRADE_FIELDS = new Set(['profile', 'ocppInterface']);
const KNOWN_FIELDS = new Set(['identity', 'password', 'passwordBase64', 'profile', 'serial', 'organization', 'backendUsername',
  'backendPassword', 'backendPasswordBase64', 'reportOnly', 'rotationDisabled', 'allowShortPassword']);

/** Maps a JSON body to `ChargerAdmin.set` changes (`null` clears a field). */
function chargerChanges(b: Record<string, unknown>): ChargerChanges {
  onlyFields(b, KNOWN_FIELDS);
  const c: ChargerChanges = {};
  const pw = secretOrNull(b, 'password');
  if (pw !== undefined) c.password = pw;
  const bpw = secretOrNull(b, 'backendPassword');
  if (bpw !== undefined) c.backendPassword = bpw;
  if (b.profile !== undefined) c.profile = parseProfile(b.profile);
  for (const k of ['serial', 'organization', 'backendUsername'] as const) {
    if (b[k] === null) c[k] = null;
    else if (b[k] !== undefined) c[k] = optString(b, k);
  }
  // The CSMS username lives in the CSMS credentials: it is cleared with them, and cannot be set while they go.
  if (c.backendUsername === null) throw new ApiError(400, 'bad_input', 'backendUsername cannot be cleared alone: send "backendPassword": null to remove the CSMS credentials');
  if (c.backendPassword === null && c.backendUsername !== undefined) throw new ApiError(400, 'bad_input', 'backendUsername cannot be set while backendPassword is cleared');
  for (const k of ['reportOnly', 'rotationDisabled', 'allowShortPassword'] as const) {
    if (b[k] === undefined) continue;
    if (typeof b[k] !== 'boolean') throw new ApiError(400, 'bad_input', `${k} must be true or false`);
    c[k] = b[k] as boolean;
  }
  return c;
}

function secretOrNull(b: Record<string, unknown>, name: string): Buffer | null | undefined {
  if (b[name] !== undefined && b[`${name}Base64`] !== undefined) throw new ApiError(400, 'bad_input', `give ${name} or ${name}Base64, not both`);
  if (b[name] === null || b[`${name}Base64`] === null) return null;
  return secret(b, name);
}

/** Reads `<name>` (UTF-8 text) or `<name>Base64`; never echoes the value in an error. */
function secret(b: Record<string, unknown>, name: string): Buffer | undefined {
  const text = b[name];
  const b64 = b[`${name}Base64`];
  if (text !== undefined && b64 !== undefined) throw new ApiError(400, 'bad_input', `give ${name} or ${name}Base64, not both`);
  if (text !== undefined) {
    if (typeof text !== 'string') throw new ApiError(400, 'bad_input', `${name} must be a string`);
    return Buffer.from(text, 'utf8');
  }
  if (b64 !== undefined) {
    if (typeof b64 !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new ApiError(400, 'bad_input', `${name}Base64 must be base64`);
    return Buffer.from(b64, 'base64');
  }
  return undefined;
}

function optString(b: Record<string, unknown>, name: string): string | undefined {
  const v = b[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ApiError(400, 'bad_input', `${name} must be a string`);
  return v;
}

function intParam(url: URL, name: string): number | undefined {
  const v = url.searchParams.get(name);
  if (v === null) return undefined;
  if (!/^\d{1,6}$/.test(v)) throw new ApiError(400, 'bad_input', `${name} must be a non-negative integer`);
  return Number(v);
}

function decodeParam(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw new ApiError(400, 'bad_input', 'bad percent-encoding in the path');
  }
}

function parseJson(buf: Buffer): Record<string, unknown> {
  if (buf.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new ApiError(400, 'bad_json', 'the request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ApiError(400, 'bad_json', 'the request body must be a JSON object');
  return v as Record<string, unknown>;
}

function readLimited(req: http.IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? NaN);
    if (declared > max) return reject(new ApiError(413, 'body_too_large', `the request body is limited to ${max} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError(413, 'body_too_large', `the request body is limited to ${max} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof ChargerAdminError) {
    return new ApiError(STATUS[err.reason] ?? 400, err.reason, err.message, err.lines.length ? { lines: err.lines } : {});
  }
  if (err instanceof StoreError) {
    if (err.reason === 'store_invalid_input') return new ApiError(400, 'bad_input', err.message);
    return new ApiError(503, err.reason, 'the credential store is unavailable');
  }
  return new ApiError(500, 'internal_error', 'internal error');
}
