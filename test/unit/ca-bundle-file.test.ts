/** The client CA bundle as forwarded certificates are checked against it: follows the file, keeps the last good one. */
import t from 'tap';
import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { X509Certificate } from 'node:crypto';
import { createRootCa } from '../../certs';
import { reloadingCaBundle } from '../../proxy/ca-bundle-file';
import { scratchDir } from '../helpers/proxy';

t.test('re-read when the file changes, at most once per interval; a broken file keeps the last good bundle', async (t) => {
  const dir = scratchDir(t, 'ca-bundle-');
  const file = path.join(dir, 'client-ca.crt');
  const [a, b] = await Promise.all([createRootCa({ keyType: 'ec', commonName: 'CA A' }), createRootCa({ keyType: 'ec', commonName: 'CA B' })]);
  const names = (certs: X509Certificate[]) => certs.map((c) => /CN=([^\n]+)/.exec(c.subject)?.[1]);
  let clock = 1_000_000;
  const write = (pem: string, mtimeS: number) => { writeFileSync(file, pem); utimesSync(file, mtimeS, mtimeS); };

  t.throws(() => reloadingCaBundle(file, 5000, () => clock)(), /ENOENT/, 'no file and nothing read before: fails (closed)');
  write(a.rootPem, 1000);
  const anchors = reloadingCaBundle(file, 5000, () => clock);
  t.same(names(anchors()), ['CA A']);
  write(a.rootPem + b.rootPem, 2000);
  clock += 1000;
  t.same(names(anchors()), ['CA A'], 'not looked at again within the interval');
  clock += 5000;
  t.same(names(anchors()), ['CA A', 'CA B'], 'a CA added to the file is trusted after the interval');
  write(b.rootPem, 3000);
  clock += 5000;
  t.same(names(anchors()), ['CA B'], 'a CA removed from the file is no longer trusted');
  write('-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n', 4000);
  clock += 5000;
  t.same(names(anchors()), ['CA B'], 'a file broken mid-rotation keeps the last good bundle');
});
