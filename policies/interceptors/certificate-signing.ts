import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { SignCsrResult } from '../../certs';
import {
  certificateSignedRequest, dialectOf, isV2gRequest, MAX_CERTIFICATE_CHAIN_CHARS, readSignCertificate, readStatus,
  signCertificateAnswer, type OcppDialect, type SignCertificateRequest,
} from '../../proxy/ocpp/dialects';
import type { CertificatePatch, ChargerRecord, CredentialStore } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import { InjectionError, type ChargerCall, type ChargerCallDecision, type Interceptor, type InterceptorFactory, type SessionApi } from './types';

/** The subject a CSR must carry for one charger. */
export interface SigningPolicy {
  expectedCommonName?: string;
  expectedOrganization?: string;
  /** The charger identity the certificate is issued to (named in it: see certs/identity-name.ts). */
  identity?: string;
}

/** Something that checks and signs CSRs (proxy/ca-signer.ts `CaSigner`, or a V2G signer). */
export interface CsrSigner {
  /** Never throws for a bad CSR (`{ok:false, reason}`); may throw when the CA itself fails. */
  sign(csrPem: string, policy: SigningPolicy): Promise<SignCsrResult>;
}

/** Metric hook (ProxyMetrics.certificates). */
export interface CertificateMetrics {
  certificate(outcome: 'signed' | 'rejected', reason: string): void;
}

/** Dependencies of {@link certificateSigning}. */
export interface CertificateSigningDeps {
  store: CredentialStore;
  /** Signs charger (CSMS-connection) certificates; null: every SignCertificate is Rejected. */
  signer: CsrSigner | null;
  /** Signs ISO 15118 V2G certificates; absent: V2G requests are Rejected (`v2g_unsupported`). */
  v2gSigner?: CsrSigner | null;
  /** Expected CSR O when the charger record names none (config `organization`); null: unchecked. */
  organization: string | null;
  /** Accepted for symmetry with the other factories; per-session lines go to `session.log`. */
  log?: Logger;
  metrics?: CertificateMetrics;
  /** Sign for Profile 1 chargers too (default false: their password travelled in clear text). */
  allowProfile1?: boolean;
  /**
   * Whether the signer's certificates would pass the listener's client CA check now (proxy/ca-signer.ts
   * `signingTrust`); when false nothing is signed: the charger would install a certificate the proxy refuses.
   */
  signerTrusted?: () => boolean;
  /** How long CertificateSigned waits for the charger (default: the session's call timeout). */
  deliveryTimeoutMs?: number;
  /** How long an issued chain is kept for a charger re-sending the same CSR (default 24 h). */
  reuseForMs?: number;
}

/** One certificate issued for a charger and its delivery state. */
interface Issuance {
  csrDigest: string;
  chainPem: string;
  serialHex: string;
  notAfter: number;
  /** The CN it was issued for: a re-sent CSR gets it again only while the charger still expects that CN. */
  commonName: string;
  request: Omit<SignCertificateRequest, 'csr'>;
  issuedAt: number;
  state: 'queued' | 'sent' | 'accepted' | 'refused' | 'failed';
}

/** Issuances remembered at most (oldest dropped first); one per charger. */
const MAX_REMEMBERED = 10_000;

/**
 * The proxy as the chargers' CA (A02/A03): answers SignCertificate itself (the CSMS never sees it),
 * checks the CSR (proof of possession, key type and size, CN = the charger's bound serial, O), answers
 * Accepted or Rejected, then delivers the chain with an injected CertificateSigned and, once the
 * charger accepts it, binds the certificate's serial and expiry to the charger in the store.
 *
 * Repeated requests (A02.FR.17–19: the charger re-sends when CertificateSigned is late, possibly with
 * a new key pair): the *same* CSR is answered Accepted and never signed twice (the chain already
 * issued is delivered again unless its delivery is still under way); a *different* CSR is signed and
 * supersedes the earlier one, whose delivery is skipped if it has not started, because the charger
 * may have discarded the old key. Deliveries to one charger run one at a time.
 */
export function certificateSigning(deps: CertificateSigningDeps): InterceptorFactory {
  const issued = new Map<string, Issuance>();
  const deliveries = new Map<string, Promise<void>>();
  const reuseForMs = deps.reuseForMs ?? 24 * 60 * 60 * 1000;

  const audit = (session: SessionApi, type: string, detail: Record<string, unknown>): void => {
    deps.store.appendAudit({ type, identity: session.identity, detail }).catch((err: unknown) => {
      session.log.error({ event: 'audit_failed', type, err: String(err) });
    });
  };

  const reject = (session: SessionApi, dialect: OcppDialect, reason: string, detail: Record<string, unknown> = {}): ChargerCallDecision => {
    session.log.warn({ event: 'csr_rejected', reason, ...detail });
    deps.metrics?.certificate('rejected', reason);
    audit(session, 'csr_rejected', { reason, ...detail });
    return { answer: signCertificateAnswer(dialect, 'Rejected', reason) };
  };

  /** Queues delivery of `issuance` behind any earlier delivery to the same charger. */
  const deliverLater = (session: SessionApi, dialect: OcppDialect, issuance: Issuance): void => {
    issuance.state = 'queued';
    const previous = deliveries.get(session.identity) ?? Promise.resolve();
    // setImmediate: the SignCertificate answer goes out first (it is sent once this decision resolves).
    const next = previous.then(() => new Promise<void>((r) => setImmediate(r))).then(() => deliver(session, dialect, issuance))
      // A failure is this delivery's alone: the next one in the queue still runs, and nothing is left unhandled.
      .catch((err: unknown) => { session.log.error({ event: 'certificate_delivery_failed', serialHex: issuance.serialHex, err: String(err) }); });
    deliveries.set(session.identity, next);
    void next.finally(() => {
      if (deliveries.get(session.identity) === next) deliveries.delete(session.identity);
    });
  };

  const deliver = async (session: SessionApi, dialect: OcppDialect, issuance: Issuance): Promise<void> => {
    const base = { serialHex: issuance.serialHex };
    if (issued.get(session.identity) !== issuance) {
      session.log.info({ event: 'certificate_delivery_skipped', reason: 'superseded', ...base });
      return;
    }
    if (session.closed) {
      issuance.state = 'failed';
      return;
    }
    issuance.state = 'sent';
    let status: string;
    try {
      const outcome = await session.injectCall('CertificateSigned', certificateSignedRequest(dialect, issuance.chainPem, issuance.request),
        deps.deliveryTimeoutMs !== undefined ? { timeoutMs: deps.deliveryTimeoutMs } : undefined);
      if (outcome.kind === 'error') {
        issuance.state = 'failed';
        session.log.warn({ event: 'certificate_delivery_failed', reason: 'callerror', code: outcome.code, ...base });
        audit(session, 'certificate_delivery_failed', { reason: 'callerror', code: outcome.code, ...base });
        return;
      }
      const read = readStatus(outcome.payload);
      status = 'status' in read ? read.status : 'unreadable';
    } catch (err) {
      issuance.state = 'failed';
      const reason = err instanceof InjectionError ? err.reason : 'failed';
      session.log.warn({ event: 'certificate_delivery_failed', reason, ...base });
      audit(session, 'certificate_delivery_failed', { reason, ...base });
      return;
    }
    if (status !== 'Accepted') {
      // A02.FR.20: the charger discards a certificate it rejects and waits for a new trigger.
      issuance.state = 'refused';
      session.log.warn({ event: 'certificate_refused', status, ...base });
      audit(session, 'certificate_refused', { status, ...base });
      return;
    }
    issuance.state = 'accepted';
    await bind(session, issuance);
  };

  const bind = async (session: SessionApi, issuance: Issuance): Promise<void> => {
    const base = { serialHex: issuance.serialHex, notAfter: issuance.notAfter };
    try {
      // Only the binding's fields: an operator's serial number written meanwhile stays.
      const updated = await deps.store.updateCharger(session.identity, {
        certificate: binding(issuance.serialHex, issuance.notAfter, issuance.commonName),
      });
      if (!updated) {
        session.log.error({ event: 'certificate_bind_failed', reason: 'charger_unknown', ...base });
        return;
      }
      session.log.info({ event: 'certificate_bound', ...base });
      audit(session, 'certificate_bound', base);
    } catch (err) {
      // The charger holds a valid certificate from our CA; the operator sees why the binding lags.
      session.log.error({ event: 'certificate_bind_failed', reason: 'store_unavailable', err: String(err), ...base });
    }
  };

  const onSignCertificate = async (session: SessionApi, dialect: OcppDialect, call: ChargerCall): Promise<ChargerCallDecision> => {
    const req = readSignCertificate(dialect, call.payload);
    if ('problem' in req) return reject(session, dialect, req.problem);
    const typeDetail = req.certificateType ? { certificateType: req.certificateType } : {};
    if (session.profile === 1 && !deps.allowProfile1) return reject(session, dialect, 'profile_too_low', typeDetail);
    const signer = isV2gRequest(req) ? deps.v2gSigner ?? null : deps.signer;
    if (!signer) return reject(session, dialect, isV2gRequest(req) ? 'v2g_unsupported' : 'no_signer', typeDetail);
    if (signer === deps.signer && deps.signerTrusted && !deps.signerTrusted()) {
      session.log.error({ event: 'signing_ca_untrusted' });
      return reject(session, dialect, 'signer_untrusted', typeDetail);
    }

    let record: ChargerRecord | null;
    let revokedEarlier = false;
    const csrDigest = createHash('sha256').update(req.csr.replace(/\s+/g, '')).digest('hex');
    const earlier = issued.get(session.identity);
    const repeated = earlier && earlier.csrDigest === csrDigest && Date.now() - earlier.issuedAt < reuseForMs && earlier.notAfter > Date.now() ? earlier : null;
    try {
      record = await deps.store.getCharger(session.identity);
      // A repeated CSR gets the same certificate only while that one is still good for this charger.
      if (repeated && record) revokedEarlier = await deps.store.isRevoked(repeated.serialHex);
    } catch {
      return reject(session, dialect, 'store_unavailable', typeDetail);
    }
    if (!record) return reject(session, dialect, 'charger_unknown', typeDetail);
    if (record.status === 'blocked') return reject(session, dialect, 'charger_blocked', typeDetail);
    if (repeated && !revokedEarlier && repeated.commonName === expectedCommonName(record)) {
      const inFlight = repeated.state === 'queued' || repeated.state === 'sent';
      session.log.info({ event: 'csr_repeated', serialHex: repeated.serialHex, deliveryInFlight: inFlight });
      audit(session, 'csr_repeated', { serialHex: repeated.serialHex, deliveryInFlight: inFlight });
      if (!inFlight) {
        repeated.request = requestEcho(req);
        deliverLater(session, dialect, repeated);
      }
      return { answer: signCertificateAnswer(dialect, 'Accepted') };
    }

    const policy: SigningPolicy = { expectedCommonName: expectedCommonName(record), identity: session.identity };
    const organization = record.organization ?? deps.organization;
    if (organization) policy.expectedOrganization = organization;

    // The charger left (its last frames are still passed on, this CSR among them): no one would get the certificate.
    if (session.closed) return reject(session, dialect, 'session_closed', typeDetail);
    let result: SignCsrResult;
    try {
      result = await signer.sign(req.csr, policy);
    } catch (err) {
      session.log.error({ event: 'signer_failed', err: String(err) });
      return reject(session, dialect, 'signer_failed', typeDetail);
    }
    if (!result.ok) return reject(session, dialect, result.reason, { ...typeDetail, expectedCn: policy.expectedCommonName });
    if (result.chainPem.length > MAX_CERTIFICATE_CHAIN_CHARS) return reject(session, dialect, 'chain_too_long', typeDetail);

    const issuance: Issuance = {
      csrDigest, chainPem: result.chainPem, serialHex: result.serialHex, notAfter: result.notAfter.getTime(), commonName: policy.expectedCommonName!,
      request: requestEcho(req), issuedAt: Date.now(), state: 'queued',
    };
    issued.delete(session.identity); // re-insert: Map order = age, for eviction
    issued.set(session.identity, issuance);
    if (issued.size > MAX_REMEMBERED) issued.delete(issued.keys().next().value as string);
    const detail = { serialHex: issuance.serialHex, notAfter: issuance.notAfter, commonName: policy.expectedCommonName, ...typeDetail };
    session.log.info({ event: 'certificate_issued', ...detail });
    deps.metrics?.certificate('signed', 'ok');
    audit(session, 'certificate_issued', detail);
    deliverLater(session, dialect, issuance);
    return { answer: signCertificateAnswer(dialect, 'Accepted') };
  };

  /**
   * A Profile 3 login with a certificate the proxy issued to this charger, newer than the one bound
   * (or with one when none is): bound then. The binding follows the certificate in use even when the
   * charger's Accepted to CertificateSigned was lost (a timeout, a dropped link), so `chargers show`
   * and revocation by the bound serial name the certificate the charger really holds. Certificates
   * from other CAs are left as they were (binding them would cost a store write and a change message
   * for each charger's first login in a storm).
   */
  const bindInUse = (session: SessionApi): void => {
    const facts = admissionFacts(session.facts);
    const cert = facts?.certificate;
    if (!facts || session.profile !== 3 || !cert?.issuedToThisCharger || !Number.isFinite(cert.notAfter)) return;
    const newer = (bound: ChargerRecord['certificate']) => bound?.boundSerialHex !== cert.serialHex && (bound?.boundSerialHex === undefined || (bound.notAfter ?? 0) < cert.notAfter);
    if (!newer(facts.charger.certificate)) return; // the common case: no read, no write
    const base = { serialHex: cert.serialHex, notAfter: cert.notAfter, reason: 'in_use' };
    // Read again just before writing: a newer binding may have been written since admission.
    deps.store.getCharger(session.identity)
      .then((fresh) => (fresh && newer(fresh.certificate)
        ? deps.store.updateCharger(session.identity, { certificate: binding(cert.serialHex, cert.notAfter, cert.commonName) })
        : null))
      .then((updated) => {
        if (!updated) return;
        session.log.info({ event: 'certificate_bound', ...base });
        audit(session, 'certificate_bound', base);
      }, (err: unknown) => session.log.error({ event: 'certificate_bind_failed', ...base, reason: 'store_unavailable', err: String(err) }));
  };

  // One interceptor per dialect, shared by its sessions: nothing allocated per session.
  const perDialect = new Map<OcppDialect, Interceptor>();
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    if (!dialect) return undefined;
    let interceptor = perDialect.get(dialect);
    if (!interceptor) {
      interceptor = {
        name: 'certificate-signing',
        onOpen: bindInUse,
        onChargerCall: (s, call) => (call.action === 'SignCertificate' ? onSignCertificate(s, dialect, call) : undefined),
      };
      perDialect.set(dialect, interceptor);
    }
    return interceptor;
  };
}

/**
 * The CN a charger's certificate must carry: the bound expected CN, else its serial number, else (where
 * no serial is known) its identity (DESIGN.md: the CN is the serial number, not the OCPP identity).
 */
export function expectedCommonName(record: Pick<ChargerRecord, 'identity' | 'certificate'>): string {
  return record.certificate?.expectedCn ?? record.certificate?.serialNumber ?? record.identity;
}

/** The binding's own fields (merged into the record's: an operator's serial number stays). */
function binding(serialHex: string, notAfter: number, commonName: string | null): CertificatePatch {
  return { boundSerialHex: serialHex, notAfter, boundAt: Date.now(), commonName };
}

function requestEcho(req: SignCertificateRequest): Omit<SignCertificateRequest, 'csr'> {
  const echo: Omit<SignCertificateRequest, 'csr'> = {};
  if (req.certificateType !== undefined) echo.certificateType = req.certificateType;
  if (req.requestId !== undefined) echo.requestId = req.requestId;
  return echo;
}
