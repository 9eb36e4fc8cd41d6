/** Test helpers for the handshakes of proxy/wire/: hand-written requests and answers, our server, a ws server. */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Test } from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { connectWebSocket, HandshakeError } from '../../proxy/wire/client-handshake';
import { FrameSocket } from '../../proxy/wire/frame-socket';
import { acceptWebSocket } from '../../proxy/wire/server-handshake';
import { waitFor } from './net';
import { acceptFor, noop } from './wire';
// HTTP helpers for the handshakes.

export const KEY = 'dGhlIHNhbXBsZSBub25jZQ=='; // RFC 6455 1.3
export const KEY_ACCEPT = 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=';

/** An upgrade request written by hand; `over` replaces headers (null removes one). */
export function upgradeRequest(over: Record<string, string | null> = {}, method = 'GET', target = '/ocpp/CP-1'): string {
  const headers: Record<string, string | null> = {
    Host: '127.0.0.1',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Protocol': 'ocpp1.6',
    ...over,
  };
  const lines = Object.entries(headers).filter(([, v]) => v !== null).map(([k, v]) => `${k}: ${v}\r\n`);
  return `${method} ${target} HTTP/1.1\r\n${lines.join('')}\r\n`;
}

/** The head of an HTTP answer read from a raw socket, and the bytes that followed it. */
export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  rest: Buffer;
  socket: net.Socket;
  closed: () => boolean;
}

export async function rawUpgrade(port: number, request: string | Buffer): Promise<RawAnswer> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', noop);
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.write(request);
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.includes('\r\n\r\n')) {
        socket.off('data', onData);
        socket.pause();
        resolve();
      }
    };
    socket.on('data', onData);
    socket.once('close', () => reject(new Error(`closed before an answer (got ${JSON.stringify(buf.toString())})`)));
  });
  const end = buf.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1] ?? 0), headers, rest: buf.subarray(end + 4), socket, closed: () => closed };
}

/** An http.Server whose 'upgrade' handler is acceptWebSocket; what it returned is in `accepted`. */
export interface OurServer {
  port: number;
  url: string;
  accepted: (FrameSocket | null)[];
  /** The next acceptWebSocket result. */
  next(): Promise<FrameSocket | null>;
}

export async function startOurServer(t: Test, opts: { protocol: string | false; maxPayload?: number }): Promise<OurServer> {
  const server = http.createServer((_req, res) => res.writeHead(426).end());
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const accepted: (FrameSocket | null)[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', noop);
    accepted.push(acceptWebSocket(req, socket, head, { protocol: opts.protocol, maxPayload: opts.maxPayload ?? 1 << 20 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(async () => {
    for (const a of accepted) a?.terminate();
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  let taken = 0;
  return {
    port,
    url: `ws://127.0.0.1:${port}/ocpp/CP-1`,
    accepted,
    async next() {
      await waitFor(() => accepted.length > taken, 'an upgrade');
      return accepted[taken++]!;
    },
  };
}

/** A ws WebSocketServer on loopback (ws:// or, with `tls`, wss://); connections and requests recorded. */
export interface TheirServer {
  port: number;
  url: string;
  requests: http.IncomingMessage[];
  connections: WebSocket[];
  next(): Promise<WebSocket>;
}

export async function startWsServer(t: Test, opts: WebSocket.ServerOptions = {}, tlsOpts?: https.ServerOptions): Promise<TheirServer> {
  const server = tlsOpts ? https.createServer(tlsOpts) : http.createServer();
  const wss = new WebSocketServer({ server, ...opts });
  const requests: http.IncomingMessage[] = [];
  const connections: WebSocket[] = [];
  wss.on('connection', (ws, req) => {
    ws.on('error', noop);
    connections.push(ws);
    requests.push(req);
  });
  wss.on('error', noop);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  let taken = 0;
  return {
    port,
    url: `${tlsOpts ? 'wss' : 'ws'}://127.0.0.1:${port}/ocpp/CP-1`,
    requests,
    connections,
    async next() {
      await waitFor(() => connections.length > taken, 'a ws connection');
      return connections[taken++]!;
    },
  };
}

/** An http.Server answering every upgrade with `answer` (written by hand); requests recorded. */
export async function startHandWrittenServer(t: Test, answer: (req: http.IncomingMessage, socket: Duplex) => void): Promise<{ port: number; url: string; requests: http.IncomingMessage[]; sockets: Duplex[] }> {
  const server = http.createServer();
  const requests: http.IncomingMessage[] = [];
  const sockets: Duplex[] = [];
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex) => {
    socket.on('error', noop);
    requests.push(req);
    sockets.push(socket);
    answer(req, socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { port, url: `ws://127.0.0.1:${port}/ocpp/CP-1`, requests, sockets };
}

/** A 101 answer for `req`, with `extra` header lines (each ending in \r\n). */
export function switching(req: http.IncomingMessage, extra = ''): string {
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptFor(String(req.headers['sec-websocket-key']))}\r\n${extra}\r\n`;
}

/** connectWebSocket's rejection, which must be a HandshakeError. */
export async function refusal(t: Test, p: Promise<FrameSocket>): Promise<HandshakeError> {
  try {
    const ws = await p;
    ws.terminate();
  } catch (err) {
    t.ok(err instanceof HandshakeError, `a HandshakeError (got ${String(err)})`);
    t.ok(err instanceof Error, 'an Error');
    return err as HandshakeError;
  }
  throw new Error('connectWebSocket resolved where it should have been refused');
}
