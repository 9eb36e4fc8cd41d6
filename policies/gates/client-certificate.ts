import { namesIdentity, normaliseSerial } from '../../certs';
import type { ChargerRecord, CredentialStore } from '../../proxy/store/types';
import type { BruteForceGuard } from '../brute-force';
import type { AdmittedCertificate } from './facts';
import { prefetchedFailures } from './prefetch';
import type { Gate, GateVerdict, UpgradeContext } from './types';
import { lockoutAddressOf, reject } from './types';

/** Node's verdicts that mean "outside the validity period" rather than "not ours". */
const VALIDITY_ERRORS = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID']);

/**
 * Profile 3: the client certificate must chain to the client CA (Node checked the chain and dates at
 * the socket), not be revoked, carry the configured organisation in O, and carry the CN bound to this
 * charger (its serial number, else its identity), and, when it names a charger identity (the
 * proxy's own certificates do), name this one. A certificate valid for another charger must not
 * log in as this one (citrineos-core#1098). Every failure is 401 and counts towards lockout.
 */
export function clientCertificateGate(deps: { store: CredentialStore; guard: BruteForceGuard; organization: string | null }): Gate {
  return {
    name: 'client-certificate',
    reportOnlyCapable: true,
    async check(ctx: UpgradeContext): Promise<GateVerdict> {
      if (ctx.facts.profile !== 3) return undefined;
      // An unknown identity passed the record gate only as an auto-enrolment candidate, and only a
      // factory default password enrols: a certificate alone must not admit a charger with no record.
      if (!ctx.facts.charger && ctx.facts.enrolCandidate) return reject(404, 'unknown_identity');
      const verdict = await judge(ctx, deps);
      if (verdict) await deps.guard.recordFailure(ctx.identity, lockoutAddressOf(ctx));
      // A good certificate clears the identity's count, as the right password does: a charger that
      // now and then tries an older certificate (A02.FR.09/10) must not add up to a lockout.
      else await deps.guard.recordSuccess(ctx.identity, await prefetchedFailures(ctx));
      return verdict;
    },
  };
}

async function judge(ctx: UpgradeContext, deps: { store: CredentialStore; organization: string | null }): Promise<GateVerdict> {
  const cert = ctx.peerCertificate!;
  if (!ctx.peerAuthorized) {
    return reject(401, VALIDITY_ERRORS.has(ctx.peerAuthorizationError ?? '') ? 'cert_expired' : 'cert_untrusted');
  }
  // A resumed TLS session carries the verdict of its full handshake, dates included: a certificate
  // that has expired since would still be "authorized" for as long as the session ticket lives.
  const now = Date.now();
  if (!(Date.parse(cert.valid_to) > now && Date.parse(cert.valid_from) <= now)) return reject(401, 'cert_expired');
  let serialHex: string;
  try {
    serialHex = normaliseSerial(cert.serialNumber);
  } catch {
    return reject(401, 'cert_untrusted');
  }
  if (await deps.store.isRevoked(serialHex)) return reject(401, 'cert_revoked');
  const record = ctx.facts.charger as ChargerRecord | undefined;
  const commonName = first(cert.subject?.CN);
  const organization = first(cert.subject?.O);
  const expectedOrg = record?.organization ?? deps.organization;
  if (expectedOrg && organization !== expectedOrg) return reject(401, 'cert_org_mismatch');
  if (record) {
    const expectedCn = record.certificate?.expectedCn ?? record.certificate?.serialNumber ?? record.identity;
    if (commonName !== expectedCn) return reject(401, 'cert_identity_mismatch');
  } else if (commonName !== ctx.identity) {
    return reject(401, 'cert_identity_mismatch');
  }
  // The CN is a serial number, which another charger's identity may equal: a certificate the proxy
  // issued names the identity it was issued to, and logs in as that charger only.
  const named = namesIdentity(cert.subjectaltname, ctx.identity);
  if (named === false) return reject(401, 'cert_identity_mismatch');
  const admitted: AdmittedCertificate = { serialHex, commonName, organization, notAfter: Date.parse(cert.valid_to), issuedToThisCharger: named === true };
  ctx.facts.certificate = admitted;
  return undefined;
}

/** Subject fields may repeat; Node then gives an array. */
function first(v: string | string[] | undefined): string | null {
  if (v === undefined) return null;
  return Array.isArray(v) ? (v[0] ?? null) : v;
}
