/**
 * The "node" bench target: the least any Node.js TLS-terminating proxy can do. It terminates TLS with
 * the same certificates, suites and optional client certificate as the other targets, then pipes the
 * decrypted bytes to the CSMS stand-in and back: no HTTP parsing, no WebSocket framing, no password,
 * no Redis, no logs. Its figures are the floor for a proxy written in Node, so the distance from ours
 * to it is our own work, and the distance from it to HAProxy is the runtime's.
 *
 * Usage (started by targets.ts): node node-floor.js <port> <csmsPort> <pkiDir> <ciphers> [processes]
 * With processes > 1 (the bench's --threads), that many processes share the listener, as ours does.
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import path from 'node:path';
import * as tls from 'node:tls';

const [port, csmsPort, pkiDir, ciphers, processesArg] = process.argv.slice(2);
const processes = Number(processesArg ?? '1');
if (!port || !csmsPort || !pkiDir || !ciphers || !Number.isInteger(processes) || processes < 1) {
  process.stderr.write('usage: node node-floor.js <port> <csmsPort> <pkiDir> <ciphers> [processes]\n');
  process.exit(2);
}
if (processes > 1 && cluster.isPrimary) {
  for (let i = 0; i < processes; i++) cluster.fork();
  process.on('SIGTERM', () => { for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGTERM'); process.exit(0); });
} else {
  serve();
}

function serve(): void {
  const pem = (name: string) => readFileSync(path.join(pkiDir, name));

  const server = tls.createServer({
    // Both server certificates: OpenSSL picks by the suites the client offers, as for the others.
    cert: [pem('server-rsa.crt'), pem('server-ec.crt')],
    key: [pem('server-rsa.key'), pem('server-ec.key')],
    ca: pem('ca.crt'),
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ciphers,
    ecdhCurve: 'X25519:P-256:P-384',
  }, (charger) => {
    const csms = net.connect(Number(csmsPort), '127.0.0.1');
    charger.setNoDelay(true);
    csms.setNoDelay(true);
    charger.pipe(csms).pipe(charger);
    const end = () => { charger.destroy(); csms.destroy(); };
    charger.on('error', end).on('close', end);
    csms.on('error', end).on('close', end);
  });
  server.on('tlsClientError', () => { /* a failed handshake is the client's problem; the bench counts it */ });
  server.listen(Number(port), '127.0.0.1');
  process.on('SIGTERM', () => process.exit(0));
}
