/**
 * PROXY protocol v1 (text) and v2 (binary) as HAProxy's proxy-protocol.txt specifies them, for
 * chargers behind a Layer-4 load balancer: the balancer prefixes each TCP connection with a header
 * naming the real client, and the proxy logs and rate-limits that address instead of the balancer's.
 *
 * Off unless wired in; when on, only peers inside the configured networks may send a header, and
 * every connection on that listener must carry one (the spec forbids guessing: a listener either
 * expects the header or does not).
 */
import net from 'node:net';
import tls from 'node:tls';
import { canonicalIPv6, isInNetworks } from './cidr';
import { recordClientEndpoint, type ClientEndpoint } from './client-address';
import { frontFor } from './server-front';

/** Why a header was not accepted; the same label goes to logs and metrics. */
export type ProxyHeaderFailure = 'header_invalid' | 'header_too_large';

/** Why a connection on the PROXY listener was refused. */
export type ProxyRefusalReason = ProxyHeaderFailure | 'untrusted_source' | 'header_timeout' | 'closed_before_header' | 'socket_error';

/** A malformed or oversized header. `reason` is the label; the message says what was wrong. */
export class ProxyProtocolError extends Error {
  constructor(readonly reason: ProxyHeaderFailure, message: string) {
    super(message);
    this.name = 'ProxyProtocolError';
  }
}

/** One parsed header. */
export interface ProxyHeader {
  version: 1 | 2;
  /** 'local': the balancer speaks for itself (health checks); the peer address stays. */
  command: 'proxy' | 'local';
  /** The real client; null when the header carries no usable address (LOCAL, UNKNOWN, UNSPEC, UNIX). */
  source: ClientEndpoint | null;
  /** The address the client connected to, when given. */
  destination: ClientEndpoint | null;
  /** Bytes the header occupies at the start of the stream. */
  length: number;
}

/** v1 lines are at most 107 bytes including CRLF (spec 2.1). */
export const V1_MAX_BYTES = 107;
/** Default cap for a v2 header including TLVs (the spec asks receivers to take at least 232 bytes). */
export const DEFAULT_MAX_HEADER_BYTES = 2048;

const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V2_FIXED = 16;

/** True while `buf` is still a prefix of (or starts with) `expected`. */
function startsLike(buf: Buffer, expected: Buffer): boolean {
  const n = Math.min(buf.length, expected.length);
  return buf.subarray(0, n).equals(expected.subarray(0, n));
}

/**
 * Parses a PROXY header at the start of `buf`.
 * @returns the header, or null when more bytes are needed to decide.
 * @throws ProxyProtocolError when the bytes cannot be a valid header (or exceed `maxBytes`).
 */
export function parseProxyHeader(buf: Buffer, maxBytes = DEFAULT_MAX_HEADER_BYTES): ProxyHeader | null {
  if (buf.length === 0) return null;
  if (startsLike(buf, V1_PREFIX)) return parseV1(buf);
  if (startsLike(buf, V2_SIGNATURE)) return parseV2(buf, maxBytes);
  throw new ProxyProtocolError('header_invalid', 'the connection does not start with a PROXY protocol v1 or v2 header');
}

function parseV1(buf: Buffer): ProxyHeader | null {
  const end = buf.subarray(0, V1_MAX_BYTES).indexOf('\r\n');
  if (end < 0) {
    if (buf.length >= V1_MAX_BYTES) throw new ProxyProtocolError('header_too_large', `PROXY v1 line longer than ${V1_MAX_BYTES} bytes`);
    if (buf.subarray(0, V1_MAX_BYTES).some((b) => b < 0x20 && b !== 0x0d)) throw invalid('control character in PROXY v1 line');
    return null;
  }
  const line = buf.subarray(0, end);
  if (line.some((b) => b < 0x20 || b > 0x7e)) throw invalid('non-printable byte in PROXY v1 line');
  const parts = line.toString('latin1').split(' ');
  const length = end + 2;
  if (parts[1] === 'UNKNOWN') return { version: 1, command: 'proxy', source: null, destination: null, length };
  if (parts[1] !== 'TCP4' && parts[1] !== 'TCP6') throw invalid(`PROXY v1 protocol must be TCP4, TCP6 or UNKNOWN`);
  if (parts.length !== 6) throw invalid('PROXY v1 line must have exactly: PROXY <proto> <src> <dst> <sport> <dport>');
  const family = parts[1] === 'TCP4' ? 'IPv4' : 'IPv6';
  return {
    version: 1,
    command: 'proxy',
    source: v1Endpoint(parts[2], parts[4], family),
    destination: v1Endpoint(parts[3], parts[5], family),
    length,
  };
}

function v1Endpoint(address: string, portText: string, family: 'IPv4' | 'IPv6'): ClientEndpoint {
  const ok = family === 'IPv4' ? net.isIPv4(address) : net.isIPv6(address);
  if (!ok) throw invalid(`PROXY v1 address is not a valid ${family} address`);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw invalid('PROXY v1 port must be 0-65535');
  return { address: family === 'IPv6' ? canonicalIPv6(address) : address, port: Number(portText), family };
}

function parseV2(buf: Buffer, maxBytes: number): ProxyHeader | null {
  if (buf.length < V2_FIXED) return null;
  const version = buf[12] >> 4;
  const command = buf[12] & 0x0f;
  const family = buf[13] >> 4;
  const transport = buf[13] & 0x0f;
  const bodyLength = buf.readUInt16BE(14);
  const length = V2_FIXED + bodyLength;
  if (version !== 2) throw invalid(`PROXY v2 header with version ${version}`);
  if (command > 1) throw invalid(`PROXY v2 header with unknown command ${command}`);
  if (family > 3 || transport > 2) throw invalid('PROXY v2 header with unknown address family or transport');
  if (length > maxBytes) throw new ProxyProtocolError('header_too_large', `PROXY v2 header of ${length} bytes exceeds the ${maxBytes}-byte limit`);
  if (buf.length < length) return null;
  const body = buf.subarray(V2_FIXED, length);
  // LOCAL: the balancer's own connection (health check); address block, if any, is ignored.
  if (command === 0) return { version: 2, command: 'local', source: null, destination: null, length };
  const addressBytes = family === 1 ? 12 : family === 2 ? 36 : family === 3 ? 216 : 0;
  if (body.length < addressBytes) throw invalid(`PROXY v2 address block needs ${addressBytes} bytes, header has ${body.length}`);
  checkTlvs(body.subarray(addressBytes));
  if (family === 0 || family === 3) return { version: 2, command: 'proxy', source: null, destination: null, length };
  if (transport !== 1) throw invalid('PROXY v2 header for a non-stream transport on a TCP listener');
  const size = family === 1 ? 4 : 16;
  const kind = family === 1 ? 'IPv4' : 'IPv6';
  const portsAt = 2 * size;
  return {
    version: 2,
    command: 'proxy',
    source: { address: binaryAddress(body.subarray(0, size)), port: body.readUInt16BE(portsAt), family: kind },
    destination: { address: binaryAddress(body.subarray(size, portsAt)), port: body.readUInt16BE(portsAt + 2), family: kind },
    length,
  };
}

/** TLVs are skipped, but they must tile the rest of the header exactly. */
function checkTlvs(tlvs: Buffer): void {
  let at = 0;
  while (at < tlvs.length) {
    if (at + 3 > tlvs.length) throw invalid('PROXY v2 TLV truncated');
    at += 3 + tlvs.readUInt16BE(at + 1);
  }
  if (at !== tlvs.length) throw invalid('PROXY v2 TLV overruns the header');
}

function binaryAddress(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  return canonicalIPv6(groups.join(':'));
}

function invalid(message: string): ProxyProtocolError {
  return new ProxyProtocolError('header_invalid', message);
}

/** Options of {@link acceptProxyProtocol}. */
export interface ProxyListenerOptions {
  /** Balancers allowed to send headers; every other peer is refused. */
  trusted: net.BlockList;
  /** Time a trusted peer has to deliver the complete header. */
  timeoutMs: number;
  /** Cap on header bytes (v2 with TLVs); default {@link DEFAULT_MAX_HEADER_BYTES}. */
  maxHeaderBytes?: number;
  /** Called once per refused connection with the peer address and the reason label. */
  onRefused?(peerAddress: string, reason: ProxyRefusalReason, detail?: string): void;
}

/**
 * Puts a PROXY-protocol front in front of `target` (the https or http server, which then must not
 * listen itself): call `.listen()` on the returned server instead. For each connection from a
 * trusted peer the front reads the header, records the announced client (see client-address.ts),
 * pushes any bytes after the header (the TLS ClientHello, the HTTP request) back into the socket,
 * and hands the socket to `target` as if `target` had accepted it. Untrusted peers, and headers
 * that are invalid, oversized or late, get the connection destroyed and `onRefused` called.
 *
 * The front drives the target's lifecycle: its 'listening' is re-emitted on `target` (http starts
 * enforcing headersTimeout/requestTimeout and tracking connections for `closeAllConnections` only
 * then), and closing the front closes `target`. `target.listening`/`address()` stay empty: ask
 * the front.
 */
export function acceptProxyProtocol(target: net.Server, opts: ProxyListenerOptions): net.Server {
  const maxBytes = opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const front = net.createServer({ noDelay: true }, (socket) => {
    const peer = socket.remoteAddress ?? '';
    let settled = false;
    let buffered: Buffer = Buffer.alloc(0);
    const finish = () => {
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    const refuse = (reason: ProxyRefusalReason, detail?: string) => {
      if (settled) return;
      finish();
      socket.destroy();
      opts.onRefused?.(peer, reason, detail);
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      let header: ProxyHeader | null;
      try {
        header = parseProxyHeader(buffered, maxBytes);
      } catch (err) {
        const e = err as ProxyProtocolError;
        return refuse(e.reason ?? 'header_invalid', e.message);
      }
      if (!header) return;
      finish();
      socket.pause();
      if (header.source) recordClientEndpoint(socket, header.source);
      const rest = buffered.subarray(header.length);
      if (rest.length > 0) socket.unshift(rest);
      target.emit('connection', socket);
      // The http server reads through the stream, so it needs the flow back to see the unshifted
      // bytes. A TLSSocket reads the handle itself and drains the buffer on its next tick; a
      // resume here would race it and spill the ClientHello to nobody.
      if (!(target instanceof tls.Server)) socket.resume();
    };
    const onError = (err: Error) => refuse('socket_error', err.message);
    const onEnd = () => refuse('closed_before_header');
    const timer = setTimeout(() => refuse('header_timeout'), opts.timeoutMs);
    if (!isInNetworks(opts.trusted, peer)) return refuse('untrusted_source');
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('end', onEnd);
  });
  return frontFor(front, target);
}
