/**
 * Legs on `ws` (sessions with permessage-deflate, or `framing: ws`) answer pings as the proxy's own
 * framing does (proxy/pongs.ts): every ping of a burst gets its pong, and a peer that floods pings
 * and reads nothing cannot queue more than 1 MiB of pongs. `ws`'s own answering terminates a
 * connection once 60 of its pongs are unwritten.
 */
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import WebSocket, { WebSocketServer } from 'ws';
import { answerPing, NO_AUTO_PONG, PONG_HIGH_WATER } from '../../proxy/pongs';
import { sleep, waitFor } from '../helpers/net';
import { RawPeer, bounded } from '../helpers/wire';
import { rawUpgrade, upgradeRequest } from '../helpers/wire-handshakes';

/** A ws server whose connections are set up as the proxy sets up its `ws` legs (or with ws's defaults). */
async function server(t: Test, asTheProxy: boolean): Promise<{ port: number; next: () => Promise<WebSocket> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false, ...(asTheProxy ? NO_AUTO_PONG : {}) });
  const waiting: ((ws: WebSocket) => void)[] = [];
  const arrived: WebSocket[] = [];
  wss.on('connection', (ws) => {
    ws.on('error', () => undefined);
    if (asTheProxy) ws.on('ping', answerPing);
    const w = waiting.shift();
    if (w) w(ws);
    else arrived.push(ws);
  });
  await new Promise((r) => wss.once('listening', r));
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return { port: (wss.address() as AddressInfo).port, next: () => new Promise((r) => (arrived.length ? r(arrived.shift()!) : waiting.push(r))) };
}

/** A ws client that sends `count` pings at once; resolves with the pongs' payloads and how it ended, after `waitMs`. */
async function burst(port: number, count: number): Promise<{ pongs: string[]; closed: number | null }> {
  const client = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  client.on('error', () => undefined);
  await new Promise((r) => client.once('open', r));
  const pongs: string[] = [];
  let closed: number | null = null;
  client.on('pong', (d: Buffer) => pongs.push(d.toString()));
  client.on('close', (code: number) => (closed = code));
  for (let i = 0; i < count; i++) client.ping(String(i));
  await waitFor(() => pongs.length === count || closed !== null, 'all pongs or a close', 10_000);
  await sleep(100);
  client.terminate();
  return { pongs, closed };
}

bounded(t, 'a burst of 5,000 pings: a pong for each, with its payload, and the connection stays open', async (t) => {
  const { port } = await server(t, true);
  const { pongs, closed } = await burst(port, 5000);
  t.equal(pongs.length, 5000);
  t.same(pongs.slice(0, 3).concat(pongs.slice(-1)), ['0', '1', '2', '4999'], 'payloads echoed, in order');
  t.equal(closed, null, 'not closed');
});

bounded(t, "why: with ws's own answering the same burst ends the connection (1006)", async (t) => {
  const { port } = await server(t, false);
  const { pongs, closed } = await burst(port, 5000);
  t.equal(closed, 1006, `terminated after ${pongs.length} pongs`);
  t.ok(pongs.length < 5000);
});

bounded(t, 'a peer that floods pings and reads nothing: pongs past 1 MiB queued are not written, the connection stays open', async (t) => {
  const { port, next } = await server(t, true);
  const answer = await rawUpgrade(port, upgradeRequest({ 'Sec-WebSocket-Protocol': null }, 'GET', '/'));
  t.equal(answer.status, 101);
  const ws = await next();
  await new RawPeer(answer.socket, true).floodPingsUnread();
  t.ok(ws.bufferedAmount <= PONG_HIGH_WATER + 127, `pongs queued stay under 1 MiB (${ws.bufferedAmount} bytes)`);
  t.equal(ws.readyState, WebSocket.OPEN, 'and the connection stays open');
}, 15_000);
