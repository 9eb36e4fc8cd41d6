import type { Logger } from 'pino';
import { dialectOf, readStatus, renewalTrigger } from '../../proxy/ocpp/dialects';
import type { CredentialStore } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import { InjectionError, type InterceptorFactory, type SessionApi } from './types';

/** Dependencies of {@link certificateRenewal}. */
export interface CertificateRenewalDeps {
  store: CredentialStore;
  /** Renew when the certificate expires within this many days (config `renewBeforeDays`, default 30). */
  renewBeforeDays: number;
  /** Accepted for symmetry with the other factories; per-session lines go to `session.log`. */
  log?: Logger;
  /**
   * A charger that reconnects without booting again (its record says it was booted) is asked this
   * long after the session opens, unless it sends a BootNotification first. Default 5000 ms.
   */
  settleMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * Certificate renewal (A02 triggered by the CSMS side; A03's "one month" is the default window): when
 * a Profile 3 charger connects with a certificate that expires within `renewBeforeDays`, the proxy
 * asks it for a new CSR — 2.x `TriggerMessage SignChargingStationCertificate`, 1.6
 * `ExtendedTriggerMessage SignChargePointCertificate` — once per session, and only once the charger
 * may receive calls (its BootNotification answered Accepted or Pending, OCPP-SECURITY.md §7). The
 * SignCertificate that follows is handled by `certificateSigning`.
 *
 * Not triggered when the store already binds a newer certificate that is outside the window: the
 * charger accepted a renewal and simply has not switched yet (A02.FR.08), and asking again would loop.
 */
export function certificateRenewal(deps: CertificateRenewalDeps): InterceptorFactory {
  const now = deps.now ?? Date.now;
  const windowMs = deps.renewBeforeDays * DAY_MS;
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    const facts = admissionFacts(session.facts);
    const cert = facts?.certificate;
    if (!dialect || session.profile !== 3 || !cert) return undefined;
    const left = cert.notAfter - now();
    if (left > windowMs) return undefined;
    const bound = facts.charger.certificate;
    if (bound?.boundSerialHex && bound.boundSerialHex !== cert.serialHex && (bound.notAfter ?? 0) - now() > windowMs) {
      session.log.info({ event: 'certificate_renewal_skipped', reason: 'renewed_not_switched', serialHex: cert.serialHex, boundSerialHex: bound.boundSerialHex });
      return undefined;
    }

    let triggered = false;
    let bootSeen = false;
    let timer: NodeJS.Timeout | null = null;
    const detail = { serialHex: cert.serialHex, notAfter: cert.notAfter, daysLeft: Math.floor(left / DAY_MS) };

    const trigger = async (s: SessionApi): Promise<void> => {
      if (triggered || s.closed) return;
      triggered = true;
      // Let the BootNotification answer (forwarded right after onCsmsAnswer) reach the charger first.
      await new Promise((r) => setImmediate(r));
      const { action, payload } = renewalTrigger(dialect);
      let status: string;
      try {
        const outcome = await s.injectCall(action, payload);
        if (outcome.kind === 'error') status = `callerror:${outcome.code}`;
        else {
          const read = readStatus(outcome.payload);
          status = 'status' in read ? read.status : 'unreadable';
        }
      } catch (err) {
        status = err instanceof InjectionError ? err.reason : 'failed';
      }
      s.log.info({ event: 'certificate_renewal_triggered', action, status, ...detail });
      deps.store.appendAudit({ type: 'certificate_renewal_triggered', identity: s.identity, detail: { action, status, ...detail } })
        .catch((err: unknown) => s.log.error({ event: 'audit_failed', type: 'certificate_renewal_triggered', err: String(err) }));
    };

    return {
      name: 'certificate-renewal',
      onOpen(s) {
        const booted = facts.charger.bootState === 'Accepted' || facts.charger.bootState === 'Pending';
        if (!booted) return;
        timer = setTimeout(() => { if (!bootSeen) void trigger(s); }, deps.settleMs ?? 5000);
        timer.unref?.();
      },
      onChargerCall(_s, call) {
        if (call.action === 'BootNotification') bootSeen = true;
        return undefined;
      },
      onCsmsAnswer(s, call, answer) {
        if (call.action !== 'BootNotification' || answer.kind !== 'result') return;
        const status = answer.payload.status;
        if (status === 'Accepted' || status === 'Pending') void trigger(s);
      },
      onClose() {
        if (timer) clearTimeout(timer);
      },
    };
  };
}
