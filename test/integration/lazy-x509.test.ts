/**
 * `@peculiar/x509` (about 9 MiB of a bare process's memory) is loaded only when a certificate is built or a
 * CSR parsed: a proxy that starts with an existing PKI and a signing CA does not carry it until a
 * charger sends SignCertificate. Checked in a fresh Node process, whose module cache tells.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { makeTestPki, runOpenssl, tempDir } from '../helpers/pki';

const DIST = path.resolve(__dirname, '../..');

/** Runs in the child: the proxy's modules, its start-up PKI steps, then one CSR signed. */
const CHILD = `
const [dist, dir, csrPem] = process.argv.slice(1);
const loaded = () => Object.keys(require.cache).some((k) => k.includes('/@peculiar/x509/'));
(async () => {
  require(dist + '/proxy/app.js');
  require(dist + '/proxy/serve.js');
  const out = { imported: loaded() };
  const { ensureDevPki } = require(dist + '/certs/index.js');
  const { openCaSigner } = require(dist + '/proxy/ca-signer.js');
  await ensureDevPki(dir, { caKeyType: 'ec' });
  const signer = await openCaSigner({ caDir: dir, devPki: false, tlsCert: [], dataDir: dir, chargerCertDays: 30 });
  out.started = loaded();
  const signed = await signer.sign(csrPem, { expectedCommonName: 'LAZY-1' });
  out.signed = signed.ok;
  out.afterSigning = loaded();
  console.log(JSON.stringify(out));
})().catch((err) => { console.error(err); process.exit(1); });
`;

t.test('@peculiar/x509 is loaded on the first CSR, not at start-up', async (t) => {
  const dir = await tempDir(t, 'lazy-x509-');
  await makeTestPki(dir); // the PKI a restarted proxy finds on disk
  const keyPath = path.join(dir, 'csr.key');
  const csrPath = path.join(dir, 'csr.pem');
  const req = runOpenssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=LAZY-1/O=Test CPO', '-keyout', keyPath, '-out', csrPath]);
  t.equal(req.code, 0, `openssl made a CSR (${req.stderr.trim()})`);
  const csrPem = readFileSync(csrPath, 'utf8');

  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['-e', CHILD, DIST, dir, csrPem], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
  });
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, boolean>;
  t.equal(seen.imported, false, 'importing the proxy does not load it');
  t.equal(seen.started, false, 'nor do the start-up PKI checks and loading the signing CA (Node\'s crypto reads them)');
  t.equal(seen.signed, true, 'the CSR was signed');
  t.equal(seen.afterSigning, true, 'signing loaded it');
});
