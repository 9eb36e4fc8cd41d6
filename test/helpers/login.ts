import tls from 'node:tls';
import WebSocket from 'ws';

/** An HTTP Basic header value (password as text or raw bytes). */
export function basicHeader(user: string, pass: string | Buffer): string {
  return 'Basic ' + Buffer.concat([Buffer.from(user + ':'), Buffer.isBuffer(pass) ? pass : Buffer.from(pass)]).toString('base64');
}

/**
 * A plain `ws` charger, logged in over TLS with Basic auth and open, that collects every frame it
 * receives as text (for frames ocpp-rpc would not send or accept). Terminated by the test's teardown.
 */
export async function openRawCharger(
  t: { teardown(fn: () => void): void }, proxy: { tlsUrl: string; caPem: Buffer }, identity: string, password: string, subprotocol = 'ocpp1.6',
  options: WebSocket.ClientOptions = {},
): Promise<{ ws: WebSocket; got: string[] }> {
  const ws = new WebSocket(`${proxy.tlsUrl}/${identity}`, [subprotocol], {
    ca: proxy.caPem, servername: 'localhost', headers: { authorization: basicHeader(identity, password) }, ...options,
  } as WebSocket.ClientOptions);
  const got: string[] = [];
  ws.on('message', (d) => got.push(d.toString()));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  t.teardown(() => ws.terminate());
  return { ws, got };
}

/** The status of one Basic-auth WebSocket upgrade to `${url}/${identity}`: 101 when admitted (closed at once). */
export function tryBasicLogin(url: string, ca: Buffer, identity: string, password: string, protocol: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/${identity}`, [protocol], { ca, servername: 'localhost', headers: { authorization: basicHeader(identity, password) } } as WebSocket.ClientOptions);
    ws.on('unexpected-response', (_q, res) => { res.resume(); resolve(res.statusCode ?? 0); });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('error', (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

/** A WebSocket upgrade request written by hand, for a charger that leaves half way or sends what a ws client would not. */
export function upgradeRequest(identity: string, password: string, protocol: string, key = 0): string {
  return `GET /ocpp/${identity} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${Buffer.alloc(16, key).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n` +
    `Sec-WebSocket-Protocol: ${protocol}\r\nAuthorization: ${basicHeader(identity, password)}\r\n\r\n`;
}

/** A TLS connection to the proxy's charger port (trusting `ca`), handshake done. */
export async function tlsConnected(port: number, ca: Buffer): Promise<tls.TLSSocket> {
  const socket = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' });
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('secureConnect', r));
  return socket;
}
