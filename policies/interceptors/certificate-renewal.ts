import type { Logger } from 'pino';
import { dialectOf, readStatus, renewalTrigger, type OcppDialect } from '../../proxy/ocpp/dialects';
import type { ChargerRecord, CredentialStore } from '../../proxy/store/types';
import { admissionFacts, type AdmittedCertificate } from '../gates/facts';
import { BootWatch, type BootListener } from './boot-watch';
import { InjectionError, type AnsweredCall, type CallOutcome, type ChargerCall, type Interceptor, type InterceptorFactory, type SessionApi } from './types';

/** Dependencies of {@link certificateRenewal}. */
export interface CertificateRenewalDeps {
  store: CredentialStore;
  /** Renew when the certificate expires within this many days (config `renewBeforeDays`, default 30). */
  renewBeforeDays: number;
  /** Accepted for symmetry with the other factories; per-session lines go to `session.log`. */
  log?: Logger;
  /**
   * How long after the session opens a charger booted on an earlier connection may still send a
   * BootNotification before it is asked (config `bootWaitMs`; see BootWatch). Default 5000 ms.
   */
  bootWaitMs?: number;
  /**
   * While a session lasts, a renewal that is due and has not led to a new certificate (refused, no
   * CSR, a CSR that failed) is asked for again after this long. Default 6 h.
   */
  retryMs?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
/** The longest delay setTimeout takes (about 24.8 days); longer waits are re-armed when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Certificate renewal (A02 triggered by the CSMS side; A03's "one month" is the default window): when
 * a Profile 3 charger's certificate expires within `renewBeforeDays`, the proxy asks it for a new
 * CSR — 2.x `TriggerMessage SignChargingStationCertificate`, 1.6 `ExtendedTriggerMessage
 * SignChargePointCertificate` — once the charger may receive calls (its BootNotification answered
 * Accepted or Pending, OCPP-SECURITY.md §7). The SignCertificate that follows is handled by
 * `certificateSigning`.
 *
 * Sessions last weeks, so the certificate's entry into the window is timed, not only checked at
 * connection; a due renewal that did not lead to a new certificate is asked again every `retryMs`.
 * Not asked while a newer certificate outside the window was bound in this session or less than a
 * day ago: the charger accepted it and switches at its next connection (A02.FR.08), and asking
 * again would loop. A charger still presenting the old one a day after that did not take it up (a
 * 2.1 charger may discard it: A02.FR.29), and is asked again.
 */
export function certificateRenewal(deps: CertificateRenewalDeps): InterceptorFactory {
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    const facts = admissionFacts(session.facts);
    if (!dialect || session.profile !== 3 || !facts?.certificate) return undefined;
    return new CertificateRenewal(deps, dialect, facts.certificate, session.subprotocol, facts.charger.bootState);
  };
}

/** Why a due renewal is not asked for, or null when it is. */
function skipReason(record: ChargerRecord, presented: AdmittedCertificate, openedAt: number, now: number, windowMs: number): string | null {
  const b = record.certificate;
  const newerBound = b?.boundSerialHex !== undefined && b.boundSerialHex !== presented.serialHex && (b.notAfter ?? 0) - now > windowMs;
  if (!newerBound) return null;
  if (b!.boundAt !== undefined && b!.boundAt >= openedAt) return 'renewed_this_session';
  if (b!.boundAt !== undefined && now - b!.boundAt < DAY_MS) return 'renewed_not_switched';
  return null; // bound a day ago or more (or when is not known) and still not in use: ask again
}

/** One Profile 3 session's renewal. A class: one object per Profile 3 session, its methods shared. */
class CertificateRenewal implements Interceptor, BootListener {
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly retryMs: number;
  private readonly openedAt: number;
  private readonly boot: BootWatch;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private lastTriggerAt = -Infinity;
  private done = false;
  private session: SessionApi | null = null;

  constructor(
    private readonly deps: CertificateRenewalDeps,
    private readonly dialect: OcppDialect,
    private readonly cert: AdmittedCertificate,
    subprotocol: string,
    storedBoot: string | undefined,
  ) {
    this.now = deps.now ?? Date.now;
    this.windowMs = deps.renewBeforeDays * DAY_MS;
    this.retryMs = deps.retryMs ?? 6 * 60 * 60 * 1000;
    this.openedAt = this.now();
    this.boot = new BootWatch(this, storedBoot, subprotocol);
  }

  get name(): string {
    return 'certificate-renewal';
  }

  onOpen(s: SessionApi): void {
    this.session = s;
    this.boot.start(this.deps.bootWaitMs ?? 5000);
  }

  onBootReady(): void {
    void this.check();
  }

  onChargerCall(_s: SessionApi, call: ChargerCall): undefined {
    this.boot.chargerCall(call.action);
    return undefined;
  }

  onCsmsAnswer(_s: SessionApi, call: AnsweredCall, answer: CallOutcome): void {
    this.boot.csmsAnswer(call, answer);
  }

  onClose(): void {
    this.done = true;
    this.boot.stop();
    if (this.timer) clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    if (this.done) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check();
    }, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    this.timer.unref?.();
  }

  private async check(): Promise<void> {
    const s = this.session;
    // Every call, CertificateSigned among them: Accepted, or Pending on 1.6 (see BootWatch).
    if (!s || this.running || this.done || s.closed || !this.boot.allows('all')) return;
    this.running = true;
    try {
      const now = this.now();
      const untilDue = this.cert.notAfter - this.windowMs - now;
      if (untilDue > 0) return this.arm(untilDue + 1000); // not yet: look again when it is
      const sinceLast = now - this.lastTriggerAt;
      if (sinceLast < this.retryMs) return this.arm(this.retryMs - sinceLast); // a second BootNotification, say
      const record = await this.deps.store.getCharger(s.identity);
      if (!record) return;
      const skip = skipReason(record, this.cert, this.openedAt, now, this.windowMs);
      if (skip) {
        s.log.info({ event: 'certificate_renewal_skipped', reason: skip, serialHex: this.cert.serialHex, boundSerialHex: record.certificate?.boundSerialHex });
        // Bound in this session: it switches at its next connection. Bound shortly before: look again
        // once that day is over (a 2.1 charger may have discarded it, and this session may last weeks).
        if (skip === 'renewed_this_session') this.done = true;
        else this.arm(record.certificate!.boundAt! + DAY_MS - now + 1000);
        return;
      }
      this.lastTriggerAt = now;
      await this.trigger(s);
      this.arm(this.retryMs); // a new certificate bound by then stops it (renewed_this_session)
    } catch (err) {
      s.log.warn({ event: 'certificate_renewal_error', err: String(err) });
      this.arm(this.retryMs);
    } finally {
      this.running = false;
    }
  }

  private async trigger(s: SessionApi): Promise<void> {
    const { action, payload } = renewalTrigger(this.dialect);
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
    const detail = { action, status, serialHex: this.cert.serialHex, notAfter: this.cert.notAfter, daysLeft: Math.floor((this.cert.notAfter - this.now()) / DAY_MS) };
    s.log.info({ event: 'certificate_renewal_triggered', ...detail });
    this.deps.store.appendAudit({ type: 'certificate_renewal_triggered', identity: s.identity, detail })
      .catch((err: unknown) => s.log.error({ event: 'audit_failed', type: 'certificate_renewal_triggered', err: String(err) }));
  }
}
