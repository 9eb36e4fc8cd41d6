/** Whether the signing CA's certificates would pass the listener's client CA check. */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { createIntermediateCa, createRootCa } from '../../certs';
import { CaSigner } from '../../proxy/ca-signer';

t.test('trusted when the signing CA\'s root is an anchor; an intermediate alone is not (Node trusts complete chains only)', async (t) => {
  const root = await createRootCa({ keyType: 'ec', commonName: 'Root' });
  const issuing = await createIntermediateCa(root, { keyType: 'ec', commonName: 'Issuing' });
  const other = await createRootCa({ keyType: 'ec', commonName: 'Other' });
  const signer = new CaSigner(issuing, { days: 30 });
  const x = (pem: string) => new X509Certificate(pem);
  t.equal(signer.trustedBy([x(root.rootPem)]), true, 'root in the bundle');
  t.equal(signer.trustedBy([x(other.rootPem), x(root.rootPem)]), true, 'among others');
  t.equal(signer.trustedBy([x(issuing.certPem)]), false, 'only the intermediate: refused at login, so not trusted');
  t.equal(signer.trustedBy([x(other.rootPem)]), false, 'another CA');
  t.equal(signer.trustedBy([]), false, 'nothing');
});
