import t from 'tap';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { runCertsCommand } from '../../certs';
import { runOpenssl, tempDir } from '../helpers/pki';

async function run(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const code = await runCertsCommand(argv, (line) => lines.push(line));
  return { code, out: lines.join('\n') };
}

t.test('certs CLI end to end', async (t) => {
  const dir = await tempDir(t);
  const pki = path.join(dir, 'pki');

  const init = await run(['certs', 'init', '--out', pki, '--ca-key', 'ec', '--host', 'localhost', '--host', '127.0.0.1']);
  t.equal(init.code, 0, init.out);
  t.match(init.out, /created development PKI/);
  t.match((await run(['init', '--out', pki, '--ca-key', 'ec', '--host', 'localhost', '--host', '127.0.0.1'])).out, /reused/);
  t.equal(runOpenssl(['verify', '-CAfile', path.join(pki, 'ca.crt'), path.join(pki, 'server-ec.crt')]).code, 0);

  const server = await run(['server', '--ca', pki, '--host', 'proxy.test', '--host', '::1', '--key', 'ec', '--out', path.join(dir, 'srv')]);
  t.equal(server.code, 0, server.out);
  t.match(server.out, /wrote .*srv\.crt and .*srv\.key serial [0-9a-f]+ expires/);
  t.notMatch(server.out, /PRIVATE KEY/);
  t.equal((await fs.stat(path.join(dir, 'srv.key'))).mode & 0o777, 0o600);
  t.equal(new crypto.X509Certificate(await fs.readFile(path.join(dir, 'srv.crt'))).checkHost('proxy.test'), 'proxy.test');

  const charger = await run(['charger', '--ca', pki, '--serial', 'SER-CLI', '--org', 'Acme', '--days', '10', '--out', path.join(dir, 'chg')]);
  t.equal(charger.code, 0, charger.out);
  const chargerCert = new crypto.X509Certificate(await fs.readFile(path.join(dir, 'chg.crt')));
  t.equal(chargerCert.subject, 'O=Acme\nCN=SER-CLI');
  t.equal(crypto.createPrivateKey(await fs.readFile(path.join(dir, 'chg.key'))).asymmetricKeyType, 'ec', 'EC by default');

  const csr = path.join(dir, 'req.csr');
  runOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'req.key'), '-subj', '/C=DE/O=Acme/CN=SER123', '-out', csr]);
  const signedFile = path.join(dir, 'signed.crt');
  const sign = await run(['sign', csr, '--ca', pki, '--cn', 'SER123', '--org', 'Acme', '--out', signedFile]);
  t.equal(sign.code, 0, sign.out);
  t.equal(runOpenssl(['verify', '-CAfile', path.join(pki, 'ca.crt'), signedFile]).code, 0);
  const printed = await run(['sign', csr, '--ca', pki]);
  t.match(printed.out, /^-----BEGIN CERTIFICATE-----/);
  const rejected = await run(['sign', csr, '--ca', pki, '--cn', 'OTHER']);
  t.equal(rejected.code, 1);
  t.match(rejected.out, /csr_cn_mismatch/);

  const list = await run(['list', '--dir', dir]);
  t.equal(list.code, 0, list.out);
  t.match(list.out, /chg\.crt\t[0-9a-f]+\tCN=SER-CLI,O=Acme\texpires \d{4}-/);
  t.match(list.out, /signed\.crt\t[0-9a-f]+\tCN=SER123,O=Acme/);
  t.match((await run(['list', '--dir', pki])).out, /ca\.crt\t[0-9a-f]+\tCN=OCPP Security Proxy Dev Root CA/);

  t.equal((await run(['server', '--ca', path.join(dir, 'missing'), '--host', 'h', '--key', 'ec', '--out', path.join(dir, 'x')])).code, 1, 'missing CA');
  t.equal((await run(['sign', path.join(dir, 'nope.csr'), '--ca', pki])).code, 1, 'missing CSR file');
});

t.test('certs CLI usage errors exit 2 with a clear message', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['bogus'], /unknown command "bogus"/],
    [['init'], /--out is required/],
    [['init', '--out'], /--out needs a value/],
    [['init', '--out', '/tmp/x', '--colour', 'red'], /unknown flag --colour/],
    [['init', '--out', '/tmp/x', '--ca-key', 'dsa'], /--ca-key must be one of rsa, ec/],
    [['server', '--ca', '/tmp/x', '--key', 'ec', '--out', 'p'], /--host is required/],
    [['server', '--ca', '/tmp/x', '--host', 'h', '--out', 'p'], /--key is required/],
    [['charger', '--ca', '/tmp/x', '--serial', 'S', '--out', 'p', '--days', '0'], /--days must be a positive integer/],
    [['charger', '--ca', '/tmp/x', '--serial', 'S', '--serial', 'T', '--out', 'p'], /--serial given twice/],
    [['sign', '--ca', '/tmp/x'], /expected 1 argument/],
    [['list', 'extra', '--dir', '/tmp'], /unexpected argument extra/],
    [['revoke'], /expected 1 argument/],
  ];
  for (const [argv, message] of cases) {
    const result = await run(argv);
    t.equal(result.code, 2, argv.join(' '));
    t.match(result.out, message, argv.join(' '));
  }
  const help = await run(['--help']);
  t.equal(help.code, 0);
  t.match(help.out, /Usage: certs <command>/);
  t.equal((await run(['charger', '--help'])).code, 0);
  t.equal((await run([])).code, 2, 'no command prints usage and fails');
  const revoke = await run(['revoke', '0A']);
  t.equal(revoke.code, 1);
  t.match(revoke.out, /credential store/);
});
