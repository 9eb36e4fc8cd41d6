/**
 * `ocpp-security-proxy chargers ...`: operator management of chargers from the command line, over
 * the same store `serve` uses (chosen by the same flags: --data-dir, --redis, --redis-key-prefix,
 * --secret-file, --config, or their OCPP_PROXY_* environment variables).
 *
 * Output is human text, or JSON with --json. Exit codes: 0 done, 1 refused or failed (unknown
 * charger, bad password, store unreachable, ...), 2 bad usage. Secrets are never printed.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from './config';
import { parseFlags, splitExtra } from './flags';
import { openCredentials } from './store-setup';
import { StoreError } from './store/errors';
import { STORE_FILE } from './store/embedded';
import { GENERATED_SECRET_FILE, SECRET_ENV_VAR } from './store/secret';
import { ChargerAdmin, ChargerAdminError, parseOcppInterface, parseProfile, type ChargerChanges, type ChargerView, type LockoutView } from './chargers';
import { OCPP_INTERFACES, type OcppInterface } from './store/types';
import { PARKED_RESULTS } from '../policies/interceptors/profile-upgrade-messages';

type Out = (line: string) => void;
/** Where the CLI reads passwords from stdin and writes errors; tests pass their own. */
export interface ChargersIo { stdin?: NodeJS.ReadableStream; err?: Out; env?: NodeJS.ProcessEnv }

class UsageError extends Error {}

const STORE_FLAGS = '[--data-dir DIR | --redis URL [--redis-key-prefix P]] [--secret-file F] [--config FILE] [--json]';
const PW = '[--password PW | --password-file F | --password-stdin] [--allow-short-password]';
const FIELDS = '[--profile 1|2|3] [--serial CN] [--organization O] [--backend-username U] [--backend-password-file F] [--report-only]';

/** One subcommand: usage line, positionals, the extra flags it takes, and what it does. */
interface Command { usage: string; args: number; flags: string[]; run: (c: Call) => Promise<unknown> }
interface Call { admin: ChargerAdmin; pos: string[]; x: Record<string, unknown>; cfg: Record<string, unknown>; io: Required<ChargersIo>; out: Out }

const PW_FLAGS = ['password', 'password-file', 'password-stdin', 'allow-short-password'];
const COMMANDS: Record<string, Command> = {
  add: { usage: `chargers add IDENTITY ${PW} ${FIELDS}\n  Register a charger (default profile 2). Passwords under 16 bytes are refused unless --allow-short-password.`,
    args: 1, flags: [...PW_FLAGS, 'profile', 'serial'],
    run: async (c) => show(c, (await c.admin.add({ identity: c.pos[0]!, ...(await changes(c)) as object })), 'added') },
  set: { usage: `chargers set IDENTITY ${PW} ${FIELDS} [--no-report-only] [--rotation on|off] [--clear password|serial|organization|backend]...\n  Change a charger; unnamed fields stay as they are.`,
    args: 1, flags: [...PW_FLAGS, 'profile', 'serial', 'rotation', 'clear'],
    run: async (c) => show(c, await c.admin.set(c.pos[0]!, await changes(c)), 'updated') },
  show: { usage: 'chargers show IDENTITY\n  Status, profile, password state, rotation, boot, certificate binding, last seen.', args: 1, flags: [],
    run: async (c) => c.admin.show(c.pos[0]!) },
  list: { usage: 'chargers list [--limit N] [--cursor C]\n  One line per charger, in identity order; a profile upgrade or password rotation under way is named at the end.', args: 0, flags: ['limit', 'cursor'],
    run: async (c) => c.admin.list({ limit: int(c.x.limit, 'limit'), cursor: c.x.cursor as string | undefined }) },
  block: { usage: 'chargers block IDENTITY\n  Refuse the charger from its next connection attempt.', args: 1, flags: [], run: async (c) => c.admin.block(c.pos[0]!) },
  unblock: { usage: 'chargers unblock IDENTITY', args: 1, flags: [], run: async (c) => c.admin.unblock(c.pos[0]!) },
  unlock: { usage: 'chargers unlock IDENTITY\n  Lift the charger\'s lockout after failed logins and clear its count (Redis store; the embedded store keeps lockouts in the serving proxy: use its admin API).',
    args: 1, flags: [], run: async (c) => c.admin.unlock(c.pos[0]!) },
  'unlock-address': { usage: 'chargers unlock-address ADDRESS\n  Lift a source address\'s lockout after failed logins and clear its count (Redis store, as for unlock).',
    args: 1, flags: [], run: async (c) => c.admin.unlockAddress(c.pos[0]!) },
  remove: { usage: 'chargers remove IDENTITY', args: 1, flags: [], run: async (c) => { await c.admin.remove(c.pos[0]!); return { removed: c.pos[0] }; } },
  import: { usage: 'chargers import FILE|- [--allow-short-password]\n  CSV with a header row: identity,password,profile,serial,organization,backend_username,backend_password\n  (identity required). Any bad line: nothing is imported and every bad line is listed.',
    args: 1, flags: ['allow-short-password'],
    run: async (c) => c.admin.importCsv(c.pos[0] === '-' ? await readAll(c.io.stdin) : await fs.readFile(c.pos[0]!), { allowShortPasswords: c.x['allow-short-password'] === true }) },
  rotate: { usage: 'chargers rotate IDENTITY\n  Ask the proxy to rotate the password at the charger\'s next opportunity.', args: 1, flags: [], run: async (c) => c.admin.requestRotation(c.pos[0]!) },
  upgrade: { usage: 'chargers upgrade IDENTITY (--profile 2|3 [--ocpp-interface I] | --cancel)\n  Ask the proxy to move the charger to a higher security profile, or withdraw that request.\n  --ocpp-interface: the network interface of a 2.x charger\'s new connection profile\n  (Wired0..3, Wireless0..3, Any; default Any on OCPP 2.1, Wired0 on 2.0.1).', args: 1, flags: ['profile', 'cancel', 'ocpp-interface'],
    run: async (c) => {
      if (c.x.cancel === true) {
        if (c.x.profile !== undefined || c.x['ocpp-interface'] !== undefined) throw new UsageError('--cancel excludes --profile and --ocpp-interface');
        return c.admin.cancelProfileUpgrade(c.pos[0]!);
      }
      if (c.x.profile === undefined) throw new UsageError('--profile (or --cancel) is required');
      const network = c.x['ocpp-interface'] === undefined ? undefined : ocppInterfaceFlag(c.x['ocpp-interface']);
      return c.admin.requestProfileUpgrade(c.pos[0]!, profile(c.x.profile), network);
    } },
  'factory add': { usage: `chargers factory add (--prefix P | --batch B) ${PW}\n  Register a factory default password for an identity prefix or batch (any length accepted).`,
    args: 0, flags: ['prefix', 'batch', 'password', 'password-file', 'password-stdin'],
    run: async (c) => {
      const pw = await password(c);
      if (!pw) throw new UsageError('a factory default needs --password, --password-file or --password-stdin');
      return { id: await c.admin.addFactoryDefault({ prefix: c.x.prefix as string | undefined, batch: c.x.batch as string | undefined }, pw) };
    } },
  'factory list': { usage: 'chargers factory list', args: 0, flags: [], run: async (c) => c.admin.listFactoryDefaults() },
  'factory remove': { usage: 'chargers factory remove ID', args: 1, flags: [], run: async (c) => { await c.admin.removeFactoryDefault(c.pos[0]!); return { removed: c.pos[0] }; } },
  revoke: { usage: 'chargers revoke SERIAL [--reason TEXT]\n  Revoke a charger certificate by serial (hex, any common spelling).', args: 1, flags: ['reason'],
    run: async (c) => ({ revoked: await c.admin.revoke(c.pos[0]!, c.x.reason as string | undefined) }) },
  unrevoke: { usage: 'chargers unrevoke SERIAL', args: 1, flags: [], run: async (c) => ({ unrevoked: await c.admin.unrevoke(c.pos[0]!) }) },
  revocations: { usage: 'chargers revocations\n  List revoked certificate serials.', args: 0, flags: [], run: async (c) => c.admin.listRevoked() },
  audit: { usage: 'chargers audit [--limit N]\n  Newest audit events first.', args: 0, flags: ['limit'], run: async (c) => c.admin.audit(int(c.x.limit, 'limit') ?? 50) },
};

/** Commands that only read: on a data dir without a store they fail instead of creating one. */
const READ_ONLY = new Set(['show', 'list', 'factory list', 'revocations', 'audit']);

const EXTRA = {
  json: { type: 'boolean' }, password: { type: 'string' }, 'password-file': { type: 'string' }, 'password-stdin': { type: 'boolean' },
  'allow-short-password': { type: 'boolean' }, profile: { type: 'string' }, serial: { type: 'string' }, rotation: { type: 'string' },
  clear: { type: 'string', multiple: true }, limit: { type: 'string' }, cursor: { type: 'string' }, prefix: { type: 'string' },
  batch: { type: 'string' }, reason: { type: 'string' }, cancel: { type: 'boolean' }, 'ocpp-interface': { type: 'string' },
} as const;
/** Config keys that mean a per-charger field in `chargers add|set` (they configure nothing else here). */
const CHARGER_KEYS = ['organization', 'reportOnly', 'backendUsername', 'backendPasswordFile'];

/** Usage of the whole command family. */
export const CHARGERS_USAGE = `Usage: ocpp-security-proxy chargers <command> [args] ${STORE_FLAGS}

${Object.values(COMMANDS).map((c) => '  ' + c.usage.split('\n')[0]).join('\n')}

The store is chosen exactly as for serve. --password is visible in shell history and process
lists: prefer --password-file or --password-stdin. Run "chargers <command> --help" for details.
Exit codes: 0 ok, 1 refused or failed, 2 bad usage.`;

/**
 * Runs one `chargers` command (`argv` after "chargers"; a leading "chargers" is skipped).
 * @returns the process exit code
 */
export async function runChargersCommand(argv: string[], out: Out, io: ChargersIo = {}): Promise<number> {
  const full: Required<ChargersIo> = { stdin: io.stdin ?? process.stdin, err: io.err ?? ((l) => process.stderr.write(l + '\n')), env: io.env ?? process.env };
  const args = argv[0] === 'chargers' ? argv.slice(1) : argv;
  const name = args[0] === 'factory' && args[1] && !args[1].startsWith('-') ? `factory ${args[1]}` : args[0];
  const rest = args.slice(name?.includes(' ') ? 2 : 1);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? full.err : out)(CHARGERS_USAGE);
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  try {
    if (!cmd) throw new UsageError(`unknown command "${name}"`);
    const flags = parseFlags(rest, EXTRA);
    if (flags.help) { out(`Usage: ocpp-security-proxy ${cmd.usage}\n\nStore options: ${STORE_FLAGS}`); return 0; }
    if (flags.positionals.length !== cmd.args) throw new UsageError(`${name} takes ${cmd.args} argument(s), got ${flags.positionals.length}`);
    const { config, extra } = splitExtra(flags.values);
    const bad = Object.keys(extra).find((k) => k !== 'json' && !cmd.flags.includes(k));
    if (bad) throw new UsageError(`--${bad} does not apply to "${name}"`);
    const cfg: Record<string, unknown> = {};
    for (const k of CHARGER_KEYS) if (k in config) { cfg[k] = config[k]; delete config[k]; }
    if (Object.keys(cfg).length > 0 && name !== 'add' && name !== 'set') throw new UsageError(`field flags do not apply to "${name}"`);
    const conf = loadConfig({ file: flags.configFile, env: full.env, flags: config });
    // A data dir no proxy opened a store in (the store writes its file when it opens): a mistyped or
    // forgotten --data-dir would otherwise start a second store nobody serves, silently.
    const dir = path.resolve(conf.dataDir);
    const fresh = conf.redis === null && !(await exists(path.join(dir, STORE_FILE)));
    if (fresh && READ_ONLY.has(name)) {
      throw new StoreError('store_missing', `no store in ${dir} (no ${STORE_FILE}): is --data-dir the proxy's? Nothing was created`);
    }
    // With Redis the secret must be the replicas' own: one generated here could never match the store.
    if (conf.redis !== null && conf.secretFile === null && !process.env[SECRET_ENV_VAR] && !(await exists(path.join(dir, GENERATED_SECRET_FILE)))) {
      throw new StoreError('secret_missing', `with --redis, give the proxy's server secret (--secret-file or OCPP_PROXY_SECRET): none is configured and ${path.join(dir, GENERATED_SECRET_FILE)} does not exist (nothing was created)`);
    }
    const creds = await openCredentials(conf);
    if (fresh) full.err(`note: no store in ${dir} yet: this command created a new one there (the proxy must run with --data-dir ${dir} to see it)`);
    try {
      const result = await cmd.run({ admin: new ChargerAdmin(creds, { actor: 'cli' }), pos: flags.positionals, x: extra, cfg, io: full, out });
      print(out, name, result, extra.json === true);
    } finally {
      await creds.store.close();
    }
    return 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      full.err(`error: ${err.message}`);
      full.err(cmd ? `usage: ${cmd.usage.split('\n')[0]}` : 'run "chargers --help" for usage');
      return 2;
    }
    if (err instanceof ChargerAdminError) {
      full.err(`error: ${err.message} (${err.reason})`);
      for (const l of err.lines) full.err(`  line ${l.line}: ${l.message}`);
      return 1;
    }
    if (err instanceof StoreError) { full.err(`error: ${err.message} (${err.reason})`); return 1; }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') { full.err(`error: ${(err as Error).message}`); return 1; }
    throw err;
  }
}

/** Collects the field flags of `add` / `set` into changes. */
async function changes(c: Call): Promise<ChargerChanges> {
  const ch: ChargerChanges = {};
  const pw = await password(c);
  if (pw) ch.password = pw;
  if (c.x['allow-short-password'] === true) ch.allowShortPassword = true;
  if (c.x.profile !== undefined) ch.profile = profile(c.x.profile);
  if (c.x.serial !== undefined) ch.serial = c.x.serial as string;
  if (c.cfg.organization !== undefined) ch.organization = String(c.cfg.organization);
  if (c.cfg.backendUsername !== undefined) ch.backendUsername = String(c.cfg.backendUsername);
  if (c.cfg.backendPasswordFile !== undefined) ch.backendPassword = stripNewline(await fs.readFile(String(c.cfg.backendPasswordFile)));
  if (c.cfg.reportOnly !== undefined) ch.reportOnly = /^(true|1|yes|on)$/i.test(String(c.cfg.reportOnly));
  if (c.x.rotation !== undefined) {
    if (c.x.rotation !== 'on' && c.x.rotation !== 'off') throw new UsageError('--rotation must be on or off');
    ch.rotationDisabled = c.x.rotation === 'off';
  }
  for (const field of (c.x.clear as string[] | undefined) ?? []) {
    const key = ({ password: 'password', serial: 'serial', organization: 'organization', backend: 'backendPassword' } as const)[field];
    if (!key) throw new UsageError('--clear takes password, serial, organization or backend');
    if (ch[key] !== undefined) throw new UsageError(`--clear ${field} conflicts with a new value for it`);
    ch[key] = null;
  }
  return ch;
}

/** The password from exactly one of --password, --password-file, --password-stdin (trailing newline dropped). */
async function password(c: Call): Promise<Buffer | undefined> {
  const given = ['password', 'password-file', 'password-stdin'].filter((k) => c.x[k] !== undefined);
  if (given.length > 1) throw new UsageError('give only one of --password, --password-file, --password-stdin');
  if (c.x.password !== undefined) return Buffer.from(c.x.password as string, 'utf8');
  if (c.x['password-file'] !== undefined) return stripNewline(await fs.readFile(c.x['password-file'] as string));
  if (c.x['password-stdin'] === true) return stripNewline(await readAll(c.io.stdin));
  return undefined;
}

function stripNewline(b: Buffer): Buffer {
  let end = b.length;
  if (end > 0 && b[end - 1] === 0x0a) end--;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return b.subarray(0, end);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false);
}

function profile(v: unknown) {
  try { return parseProfile(v); } catch { throw new UsageError('--profile must be 1, 2 or 3'); }
}

function int(v: unknown, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9]\d{0,5}$/.test(String(v))) throw new UsageError(`--${name} must be a positive integer`);
  return Number(v);
}

/** Adds the verb for human output of add/set. */
function show(c: Call, m: { charger: ChargerView; warnings: string[] }, verb: string): unknown {
  for (const w of m.warnings) c.io.err(`warning: ${w}`);
  return { ...m, verb };
}

function print(out: Out, name: string, result: unknown, asJson: boolean): void {
  if (asJson) {
    const r = result as { charger?: unknown; verb?: string };
    out(JSON.stringify(r && r.verb ? r.charger : result, null, 2));
    return;
  }
  const r = result as Record<string, unknown>;
  if (r && typeof r.verb === 'string') { out(`${r.verb} ${(r.charger as ChargerView).identity}`); out(describe(r.charger as ChargerView)); return; }
  if (name === 'list') {
    const page = r as unknown as { items: ChargerView[]; cursor?: string };
    for (const v of page.items) out([`${v.identity}\t${v.status}\tprofile ${v.minProfile}\t${v.hasPassword ? 'password' : 'no password'}\tlast seen ${v.lastSeen ?? 'never'}`, ...inFlight(v)].join('\t'));
    if (page.cursor) out(`(more: --cursor ${page.cursor})`);
    return;
  }
  if ('identity' in (r ?? {}) && 'minProfile' in r) { out(describe(r as unknown as ChargerView)); return; }
  if (Array.isArray(result)) { for (const item of result) out(Object.values(item as object).map((v) => (v === null ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v))).join('\t')); return; }
  if (name === 'unlock-address') {
    const u = r as unknown as { address: string; wasLockedUntil: string | null };
    out(`unlocked ${u.address} (${u.wasLockedUntil ? `was locked until ${u.wasLockedUntil}` : 'was not locked'}); its failed-login count is cleared`);
    return;
  }
  if (name === 'import') {
    const i = r as unknown as { created: string[]; updated: string[]; warnings: string[] };
    out(`imported: ${i.created.length} created, ${i.updated.length} updated`);
    for (const w of i.warnings) out(`warning: ${w}`);
    return;
  }
  out(Object.entries(r).map(([k, v]) => `${k}: ${String(v)}`).join('\n'));
}

/** What `list` adds for a charger with work under way: a profile upgrade, a password rotation. */
function inFlight(v: ChargerView): string[] {
  const fields: string[] = [];
  if (v.targetProfile !== null) {
    const u = v.profileUpgrade;
    fields.push(`upgrade to profile ${v.targetProfile}: ${u?.awaitsReboot ? 'awaits reboot' : u?.lastResult ?? 'requested'}`);
  }
  if (v.pending) fields.push(`rotation: ${v.pending.accepted ? 'accepted' : v.pending.rebootRequired ? 'awaits reboot' : v.pending.sent ? 'sent' : 'stored'}`);
  else if (v.rotation.requestedAt) fields.push('rotation: requested');
  return fields;
}

/** Shown only where the lockout is visible (Redis; the embedded store keeps it in the serving proxy). */
function lockoutLine(identity: string, l: LockoutView): string {
  const failures = `${l.recentFailures} failed login(s) in the current window`;
  return l.lockedUntil ? `locked until ${l.lockedUntil} (${failures}; "chargers unlock ${identity}" lifts it)` : `none (${failures})`;
}

/** `--ocpp-interface`: a name OCPP knows, or a usage error (exit 2). */
function ocppInterfaceFlag(value: unknown): OcppInterface {
  try {
    return parseOcppInterface(value);
  } catch {
    throw new UsageError(`--ocpp-interface must be one of ${OCPP_INTERFACES.join(', ')}`);
  }
}

function upgradeLine(u: NonNullable<ChargerView['profileUpgrade']>): string {
  return [u.requestedAt && `requested ${u.requestedAt}`, u.ocppInterface && `interface ${u.ocppInterface}`, u.slot !== null && `slot ${u.slot}`,
    u.sentAt && `switch sent ${u.sentAt}${u.awaitsReboot ? ' (applies at its next reboot)' : ''}`,
    u.lastResult && `last ${u.lastResult}`, `failures ${u.failures}`, u.nextAttemptAt && `next attempt ${u.nextAttemptAt}`,
    u.lastResult !== null && PARKED_RESULTS.has(u.lastResult) && 'waits for a new request (chargers upgrade)'].filter(Boolean).join(', ');
}

/** Multi-line human description of one charger. */
export function describe(v: ChargerView): string {
  const p = v.pending;
  const rot = v.rotation;
  const lines: [string, string][] = [
    ['identity', v.identity],
    ['status', v.status],
    ['min profile', `${v.minProfile}${v.targetProfile ? ` (upgrade to ${v.targetProfile} requested)` : ''}`],
    ['password', v.hasPassword ? `set (${v.passwordSource ?? 'unknown'}, ${v.passwordSetAt ?? 'time unknown'})` : 'none'],
    ['pending rotation', p ? `since ${p.since}, sent ${p.sent ?? 'not yet'}, ${p.rebootRequired ? `reboot required since ${p.rebootRequired}` : `accepted ${p.accepted ?? 'not yet'}`}, attempt ${p.attempt}` : 'none'],
    ['rotation', `${rot.disabled ? 'disabled' : 'enabled'}${rot.requestedAt ? `, requested ${rot.requestedAt}` : ''}${rot.lastAttemptAt ? `, last attempt ${rot.lastAttemptAt}` : ''}${rot.nextAttemptAt ? `, next attempt ${rot.nextAttemptAt}` : ''}, failures ${rot.failures}${rot.lastResult ? `, last ${rot.lastResult}` : ''}`],
    ...(v.profileUpgrade ? [['profile upgrade', upgradeLine(v.profileUpgrade)] as [string, string]] : []),
    ['boot', v.boot ? `${v.boot.state}${v.boot.at ? ` at ${v.boot.at}` : ''}` : 'unknown'],
    ['certificate', v.certificate ? [v.certificate.serialNumber && `serial number ${v.certificate.serialNumber}`, v.certificate.expectedCn && `CN ${v.certificate.expectedCn}`,
      v.certificate.boundSerialHex && `bound to ${v.certificate.boundSerialHex}`, v.certificate.notAfter && `expires ${v.certificate.notAfter}`].filter(Boolean).join(', ') : 'none'],
    ['organization', v.organization ?? '-'],
    ['backend credentials', v.backend ? `username ${v.backend.username} (password set)` : 'none'],
    ['report only', v.reportOnly ? 'yes' : 'no'],
    ['last seen', v.lastSeen ?? 'never'],
    ...(v.lockout ? [['lockout', lockoutLine(v.identity, v.lockout)] as [string, string]] : []),
    ['created', v.createdAt],
    ['updated', v.updatedAt],
  ];
  return lines.map(([k, val]) => `${(k + ':').padEnd(21)}${val}`).join('\n');
}
