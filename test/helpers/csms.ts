import type { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { RPCServer } from 'ocpp-rpc';
import { freePort } from './net';

/** One frame the legacy CSMS saw, as raw text. */
export interface SeenFrame {
  identity: string;
  raw: string;
  /** true = sent by the CSMS, false = received by it. */
  outbound: boolean;
}

/** A handshake the CSMS received. */
export interface SeenHandshake {
  identity: string;
  headers: IncomingHttpHeaders;
  password: Buffer | undefined;
  protocols: string[];
}

/** A running legacy CSMS stand-in (ocpp-rpc server on plain ws://). */
export interface LegacyCsms {
  port: number;
  /** Backend URL for the proxy (identity is appended by the proxy). */
  url: string;
  server: InstanceType<typeof RPCServer>;
  clients: Map<string, any>;
  frames: SeenFrame[];
  handshakes: SeenHandshake[];
  /** Frames received from one charger, parsed. */
  received(identity: string): unknown[][];
  stop(): Promise<void>;
}

/** Options: which subprotocols to speak, how to answer handshakes, per-client set-up. */
export interface LegacyCsmsOptions {
  protocols?: string[];
  port?: number;
  /** Return an HTTP status to refuse the handshake (e.g. 404), or undefined to accept. */
  refuse?: (identity: string) => number | undefined;
  /** Called for each connected client to register handlers (BootNotification etc. have defaults). */
  onClient?: (client: any) => void;
  bootStatus?: 'Accepted' | 'Pending' | 'Rejected';
  /** Keep every frame and handshake (default true); a long-running stand-in keeps none. */
  record?: boolean;
  /** Serve wss:// with this certificate and key (default: plain ws://). */
  tls?: { cert: Buffer; key: Buffer };
  /** Loopback address to listen on (default 127.0.0.1). */
  host?: string;
}

/**
 * Starts an unmodified-CSMS stand-in: ocpp-rpc's RPCServer on 127.0.0.1 over plain ws, recording
 * every raw frame and handshake so tests can assert what reached the CSMS byte for byte.
 */
export async function startLegacyCsms(opts: LegacyCsmsOptions = {}): Promise<LegacyCsms> {
  const port = opts.port ?? (await freePort());
  const server = new RPCServer({ protocols: opts.protocols ?? ['ocpp1.6', 'ocpp2.0.1', 'ocpp2.1'], strictMode: false, pingIntervalMs: 0 } as any);
  const frames: SeenFrame[] = [];
  const handshakes: SeenHandshake[] = [];
  const clients = new Map<string, any>();
  server.auth((accept: any, reject: any, handshake: any) => {
    if (opts.record !== false) handshakes.push({ identity: handshake.identity, headers: handshake.headers, password: handshake.password, protocols: [...handshake.protocols] });
    const status = opts.refuse?.(handshake.identity);
    if (status) reject(status);
    else accept();
  });
  server.on('client', (client: any) => {
    clients.set(client.identity, client);
    client.on('message', ({ message, outbound }: { message: Buffer | string; outbound: boolean }) => {
      if (opts.record !== false) frames.push({ identity: client.identity, raw: message.toString(), outbound });
    });
    client.handle('BootNotification', () => ({ status: opts.bootStatus ?? 'Accepted', currentTime: new Date().toISOString(), interval: 300 }));
    client.handle('Heartbeat', () => ({ currentTime: new Date().toISOString() }));
    client.handle('StatusNotification', () => ({}));
    client.handle('MeterValues', () => ({}));
    client.handle('DataTransfer', () => ({ status: 'Accepted' }));
    opts.onClient?.(client);
  });
  const host = opts.host ?? '127.0.0.1';
  const httpServer = opts.tls ? await listenTls(server, opts.tls, host, port) : await server.listen(port, host);
  return {
    port,
    url: `${opts.tls ? 'wss' : 'ws'}://${host}:${port}/ocpp`,
    server,
    clients,
    frames,
    handshakes,
    received: (identity) => frames.filter((f) => f.identity === identity && !f.outbound).map((f) => JSON.parse(f.raw) as unknown[]),
    async stop() {
      await server.close({ code: 1001, awaitPending: false, force: true } as any);
      (httpServer as any)?.closeAllConnections?.();
    },
  };
}

/** ocpp-rpc's server behind an HTTPS server of our own (its listen() serves plain HTTP only). */
async function listenTls(server: InstanceType<typeof RPCServer>, tls: { cert: Buffer; key: Buffer }, host: string, port: number): Promise<https.Server> {
  const httpsServer = https.createServer({ cert: tls.cert, key: tls.key }, (_req, res) => {
    res.setHeader('x-stand-in-csms', '1'); // tells its own answer from the proxy's
    res.statusCode = 404;
    res.end();
  });
  httpsServer.on('upgrade', server.handleUpgrade);
  server.once('close', () => httpsServer.close());
  await new Promise<void>((resolve, reject) => {
    httpsServer.once('error', reject);
    httpsServer.listen(port, host, () => resolve());
  });
  return httpsServer;
}
