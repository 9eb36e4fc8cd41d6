import type { Gate, GateVerdict, UpgradeContext } from './types';
import { reject } from './types';
import { isExtensionList } from './header-lists';
import { isWebSocketKey } from '../../proxy/wire/server-handshake';

/**
 * Checks that the request is a well-formed WebSocket handshake (RFC 6455 §4.2.1) before anything
 * else is spent on it: the CSMS must not be dialled for a request `ws` would refuse anyway.
 */
export const handshakeGate: Gate = {
  name: 'handshake',
  check(ctx: UpgradeContext): GateVerdict {
    const h = ctx.req.headers;
    if (ctx.req.method !== 'GET') return reject(405, 'bad_handshake');
    if ((h.upgrade ?? '').toLowerCase() !== 'websocket') return reject(400, 'bad_handshake');
    if (!isWebSocketKey(h['sec-websocket-key'])) return reject(400, 'bad_handshake'); // Node's parser has trimmed it
    if (h['sec-websocket-version'] !== '13') return reject(400, 'bad_handshake', { 'Sec-WebSocket-Version': '13' });
    const extensions = h['sec-websocket-extensions'];
    if (extensions !== undefined && !isExtensionList(extensions)) return reject(400, 'bad_handshake');
    return undefined;
  },
};
