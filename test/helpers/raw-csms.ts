import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';

/** A legacy CSMS written with plain `ws`, for frames and timings ocpp-rpc would not produce. */
export interface RawCsms {
  /** Backend URL for the proxy (the identity is appended by the proxy). */
  url: string;
  /** Upgrade requests received so far. */
  upgrades(): number;
  stop(): Promise<void>;
}

/**
 * Starts it on loopback, speaking the first of `protocols` (default ocpp1.6) the proxy offers.
 * `onUpgrade` runs when a request arrives, `onOpen` in the same tick as the 101, which `delayMs` holds back;
 * with `tls` it serves wss:// (the proxy then needs `backendCa` for the certificate's CA).
 */
export async function startRawCsms(opts: { onUpgrade?: () => void; onOpen?: (ws: WebSocket) => void; delayMs?: number; protocols?: string[]; tls?: { cert: Buffer; key: Buffer } } = {}): Promise<RawCsms> {
  const protocols = opts.protocols ?? ['ocpp1.6'];
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (offered) => protocols.find((p) => offered.has(p)) ?? false });
  let upgrades = 0;
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key }) : http.createServer();
  server.on('upgrade', (req, socket, head) => {
    upgrades++;
    opts.onUpgrade?.();
    socket.on('error', () => undefined);
    setTimeout(() => wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => undefined);
      opts.onOpen?.(ws);
    }), opts.delayMs ?? 0);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `${opts.tls ? 'wss' : 'ws'}://127.0.0.1:${(server.address() as AddressInfo).port}/ocpp`,
    upgrades: () => upgrades,
    async stop() {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
