import WebSocket from 'ws';

/** An HTTP Basic header value (password as text or raw bytes). */
export function basicHeader(user: string, pass: string | Buffer): string {
  return 'Basic ' + Buffer.concat([Buffer.from(user + ':'), Buffer.isBuffer(pass) ? pass : Buffer.from(pass)]).toString('base64');
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
