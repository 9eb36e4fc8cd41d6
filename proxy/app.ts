import type { AddressInfo } from 'node:net';
import type { InterceptorFactory } from '../policies/interceptors/types';
import { AdminServer } from './admin';
import { probeBackend } from './backend-probe';
import type { ProxyConfig } from './config';
import type { Logger } from './log';
import { ProxyServer } from './server';
import { resolveTls, type ResolvedTls } from './tls-setup';

/** A running proxy: charger listeners, admin listener, and how to stop them. */
export interface App {
  config: ProxyConfig;
  server: ProxyServer;
  admin: AdminServer;
  tls: ResolvedTls;
  addresses: { tls: AddressInfo; plain: AddressInfo | null; admin: AddressInfo };
  /** Graceful: drain sessions (1001 after grace + jitter), then close everything. */
  drain(): Promise<void>;
  /** Immediate. */
  stop(): Promise<void>;
}

/** Test and embedding hooks. */
export interface AppOptions {
  log: Logger;
  interceptors?: InterceptorFactory[];
}

/** Composes and starts the proxy from a validated configuration. */
export async function startApp(config: ProxyConfig, opts: AppOptions): Promise<App> {
  const log = opts.log;
  const tls = await resolveTls(config);
  const backendCredentials = await globalBackendCredentials(config);
  const server = new ProxyServer(config, {
    log,
    tls: tls.files,
    interceptors: opts.interceptors,
    backendCredentials: (ctx) => (backendCredentials ? { username: backendCredentials.username ?? ctx.identity, password: backendCredentials.password } : null),
  });
  const admin = new AdminServer({
    listen: config.adminListen,
    log,
    readiness: {
      listeners: async () => server.listening,
      csms: () => probeBackend(config.backend, 1000),
    },
  });
  let listeners;
  try {
    listeners = await server.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  let adminAddress;
  try {
    adminAddress = await admin.start();
  } catch (err) {
    await server.stop();
    throw err;
  }
  const app: App = {
    config,
    server,
    admin,
    tls,
    addresses: { ...listeners, admin: adminAddress },
    async drain() {
      await server.drain();
      await admin.stop();
    },
    async stop() {
      await server.stop();
      await admin.stop();
    },
  };
  return app;
}

async function globalBackendCredentials(c: ProxyConfig): Promise<{ username: string | null; password: Buffer } | null> {
  const fromEnv = process.env.OCPP_PROXY_BACKEND_PASSWORD;
  let password: Buffer | null = fromEnv ? Buffer.from(fromEnv) : null;
  if (c.backendPasswordFile) {
    const { readFile } = await import('node:fs/promises');
    password = (await readFile(c.backendPasswordFile)).subarray(0); // raw bytes: 1.6 keys may be binary
    // A trailing newline from `echo pw > file` is never part of a password.
    while (password.length > 0 && (password[password.length - 1] === 0x0a || password[password.length - 1] === 0x0d)) password = password.subarray(0, -1);
  }
  if (!password) return null;
  return { username: c.backendUsername, password };
}
