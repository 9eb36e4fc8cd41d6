import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { RPCClient } from 'ocpp-rpc';
import { startApp, type App, type AppOptions } from '../../proxy/app';
import { loadConfig } from '../../proxy/config';
import { createLogger } from '../../proxy/log';
import { startLegacyCsms } from './csms';

/** Root of per-run scratch files (git-ignored). */
export const TMP_ROOT = path.resolve(__dirname, '../../../test/.tmp');

/**
 * A fresh scratch directory under TMP_ROOT, removed when the test ends. Call it before starting
 * whatever writes there (Redis with AOF, a proxy's data dir): teardowns run last-registered first,
 * so the directory goes after them.
 */
export function scratchDir(t: { teardown(fn: () => unknown): void }, prefix: string): string {
  const dir = mkdtempSync(path.join(TMP_ROOT, prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A stream that parses the proxy's JSON log lines into `logs`, for assertions on what was logged. */
export function logCapture(): { logs: Record<string, unknown>[]; sink: Writable } {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  return { logs, sink };
}

/** The shared development PKI for tests, created once by test/run.ts (or on first use). */
export const TEST_PKI_DIR = path.join(TMP_ROOT, 'shared-pki');

/** The shared test PKI's ECDSA server certificate and key (localhost, 127.0.0.1, ::1): for a TLS CSMS or any test server. */
export function testServerTls(): { cert: Buffer; key: Buffer } {
  return { cert: readFileSync(path.join(TEST_PKI_DIR, 'server-ec.crt')), key: readFileSync(path.join(TEST_PKI_DIR, 'server-ec.key')) };
}

/** A proxy started in-process for a test, with its log lines captured. */
export interface TestProxy extends App {
  tlsUrl: string;
  plainUrl: string | null;
  adminUrl: string;
  caPem: Buffer;
  logs: Record<string, unknown>[];
}

/**
 * Starts the proxy in this process on loopback ports chosen by the OS, using the shared dev PKI
 * (as the data dir's `pki` folder) and capturing structured log lines in `logs`.
 */
export async function startTestProxy(flags: Record<string, unknown>, opts: Partial<AppOptions> & { dataDir?: string } = {}): Promise<TestProxy> {
  const dataDir = opts.dataDir ?? path.join(TMP_ROOT, `data-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dataDir, { recursive: true });
  const { logs, sink } = logCapture();
  const config = loadConfig({
    env: {},
    flags: {
      listen: '127.0.0.1:0',
      adminListen: '127.0.0.1:0',
      dataDir,
      tlsCert: [path.join(TEST_PKI_DIR, 'server-rsa.crt'), path.join(TEST_PKI_DIR, 'server-ec.crt')],
      tlsKey: [path.join(TEST_PKI_DIR, 'server-rsa.key'), path.join(TEST_PKI_DIR, 'server-ec.key')],
      clientCa: path.join(TEST_PKI_DIR, 'ca.crt'),
      caDir: TEST_PKI_DIR,
      pingIntervalMs: '0',
      drainGraceMs: '0',
      drainJitterMs: '0',
      // Test chargers that reconnect without booting would otherwise wait 5 s for the proxy's calls;
      // test/e2e/boot-wait.test.ts sets its own.
      bootWaitMs: '300',
      ...flags,
    },
  });
  const log = opts.log ?? createLogger({ level: 'debug', destination: sink });
  let app: App;
  try {
    app = await startApp(config, { processMetrics: false, ...opts, log });
  } catch (err) {
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true }); // a proxy refused at start leaves nothing behind
    throw err;
  }
  const a = app.addresses;
  // Remove the scratch data dir when the test stops the proxy (unless the test chose its own).
  if (!opts.dataDir) {
    const stop = app.stop.bind(app);
    app.stop = async () => {
      await stop();
      rmSync(dataDir, { recursive: true, force: true });
    };
  }
  return Object.assign(app, {
    tlsUrl: `wss://127.0.0.1:${a.tls.port}/ocpp`,
    plainUrl: a.plain ? `ws://127.0.0.1:${a.plain.port}/ocpp` : null,
    adminUrl: `http://127.0.0.1:${a.admin.port}`,
    caPem: readFileSync(path.join(TEST_PKI_DIR, 'ca.crt')),
    logs,
  });
}

/** What a test charger record needs. */
/** A legacy CSMS stand-in and a proxy in front of it, both stopped at the test's teardown. */
export async function startProxyBeforeCsms(t: { teardown(fn: () => unknown): void }, flags: Record<string, unknown>): Promise<TestProxy> {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, ...flags });
  t.teardown(() => proxy.stop());
  return proxy;
}

export interface SeedCharger {
  identity: string;
  password?: string | Buffer;
  minProfile?: 1 | 2 | 3;
  serial?: string;
  organization?: string;
  status?: 'active' | 'blocked';
  source?: 'operator' | 'factory' | 'generated';
}

/** Adds a charger straight into the proxy's store (as the `chargers add` CLI would). */
export async function seedCharger(app: App, c: SeedCharger): Promise<void> {
  const { store, hasher } = app.credentials;
  const password = c.password === undefined ? undefined : Buffer.isBuffer(c.password) ? c.password : Buffer.from(c.password);
  await store.putCharger({
    identity: c.identity,
    minProfile: c.minProfile ?? 2,
    status: c.status ?? 'active',
    ...(password ? { password: c.source === 'generated' ? hasher.hashGenerated(password) : await hasher.hashOperator(password), passwordSetAt: Date.now(), passwordSource: c.source ?? 'operator' } : {}),
    ...(c.serial ? { certificate: { serialNumber: c.serial } } : {}),
    ...(c.organization ? { organization: c.organization } : {}),
  });
}

/** Options for a test charger. */
export interface ChargerOptions {
  identity: string;
  endpoint: string;
  protocols?: string[];
  password?: string | Buffer;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  reconnect?: boolean;
  /** Offer permessage-deflate (then the session runs on ws). */
  deflate?: boolean;
}

/** An ocpp-rpc charger connecting through the proxy (trusting the test CA for wss). */
export function makeCharger(o: ChargerOptions): any {
  return new RPCClient({
    endpoint: o.endpoint,
    identity: o.identity,
    protocols: o.protocols ?? ['ocpp1.6'],
    password: o.password,
    reconnect: o.reconnect ?? false,
    pingIntervalMs: 0,
    callTimeoutMs: 5000,
    // No permessage-deflate unless asked: most tests then run on the proxy's own framing, as most
    // chargers do; the deflate path (ws) has tests of its own.
    wsOpts: { perMessageDeflate: o.deflate ?? false, ...(o.endpoint.startsWith('wss') ? { ca: o.ca, cert: o.cert, key: o.key, servername: 'localhost' } : {}) },
  } as any);
}
