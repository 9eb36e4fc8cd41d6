import type { ChargerRecord, CredentialStore, ProfileUpgradeState, SecurityProfile } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import { BootWatch, type BootListener } from './boot-watch';
import {
  ANY_NEEDS_21, PARKED_RESULTS, changeSecurityProfile, defaultInterface, getNetworkPriority, readNetworkPriority, resetOnIdle, setNetworkPriority, setNetworkProfile, statusOf, statusWithReason,
} from './profile-upgrade-messages';
import { bootSerialNumber } from '../../proxy/ocpp/dialects';
import { expectedCommonName } from './certificate-signing';
import type { AnsweredCall, CallOutcome, ChargerCall, Interceptor, InterceptorFactory, SessionApi } from './types';

/** What the profile-upgrade interceptor needs. */
export interface ProfileUpgradeDeps {
  store: CredentialStore;
  /** The wss:// URL chargers reach the proxy at (2.x SetNetworkProfile needs it). */
  publicUrl: string | null;
  retryMs: number;
  callTimeoutMs: number;
  outcome?(o: 'started' | 'accepted' | 'committed' | 'rejected' | 'failed'): void;
  /** Config `checkSerialNumber`: on Profile 3 a 2.x BootNotification's serial number must be the certificate's CN. */
  checkSerialNumber?: boolean;
  /** Config `bootWaitMs`: how long after the session opens to wait for a BootNotification (see BootWatch). */
  bootWaitMs?: number;
  now?: () => number;
}

const OK = new Set(['Accepted', 'RebootRequired', 'Scheduled']);
const DAY = 24 * 3600 * 1000;
/** A call about to go out while the charger's BootNotification waits for its answer. */
const BOOT_IN_PROGRESS = 'boot_in_progress';
/** Attempts the charger accepted but did not complete (it came back below the target) before the proxy stops asking. */
const MAX_NOT_REACHED = 5;

/**
 * Security-profile upgrade on operator request (`targetProfile` in the charger's record).
 * When the charger is booted: 2→3 needs a client certificate first, so without a bound one the
 * charger is asked to request it (the certificate-signing interceptor signs it and binds it; the
 * store change brings us back here). Then 1.6: ChangeConfiguration SecurityProfile; 2.x:
 * SetNetworkProfile (a free slot, pointing at the proxy's public URL), NetworkConfigurationPriority
 * with that slot first, Reset OnIdle. After the charger's first connection on the higher profile its
 * minimum profile is raised, so the lower one is refused from then on (A05.FR.07, 1.6 A05.FR.09).
 */
export function profileUpgrade(deps: ProfileUpgradeDeps): InterceptorFactory {
  const now = deps.now ?? Date.now;
  return (session) => {
    const facts = admissionFacts(session.facts);
    if (!facts) return undefined;
    return new ProfileUpgrade(deps, now, session.identity, session.subprotocol, facts.charger);
  };
}

/**
 * 2.x: the configuration slots to try for the new network profile, in order. The one an earlier
 * attempt wrote is reused while it is still in the priority list (it points at us; a charger
 * connected below the target is not running on it), so failed attempts take no new slots.
 * Otherwise the lowest slot from 1 up that is not in the list, then the one after the highest: a
 * charger takes only the slots its NetworkConfigurationPriority's valuesList names (B09.FR.05),
 * which GetVariables cannot read, and one that allows two (B09.FR.06, libocpp's default "1,2")
 * and dropped its first after an earlier upgrade (A05.FR.06) lists only "2".
 */
export function slotCandidates(order: readonly number[], earlier: number | undefined): number[] {
  if (earlier !== undefined && order.includes(earlier)) return [earlier];
  let lowest = 1;
  while (order.includes(lowest)) lowest++;
  const next = Math.max(...order) + 1;
  return lowest === next ? [lowest] : [lowest, next];
}

/**
 * The highest profile this session's credentials were checked for: 3 with a client certificate the
 * gates accepted, 2 with a password that matched over TLS, else 1 (e.g. admitted in report-only mode
 * although a check failed).
 */
function provenProfile(s: SessionApi): SecurityProfile {
  const facts = admissionFacts(s.facts);
  if (facts?.certificate && s.profile === 3) return 3;
  if (facts?.passwordMatched && s.profile >= 2) return 2;
  return 1;
}

/** One session's profile upgrade: a class, not closures, as every admitted session has one (see rotation.ts). */
class ProfileUpgrade implements Interceptor, BootListener {
  private readonly boot: BootWatch;
  private session: SessionApi | null = null;
  /**
   * The last result in the record as read at admission, then as each change delivered it: with
   * `knownTarget`, all onBootReady needs (kept instead of the record, which every session would hold).
   */
  private latestResult: string | undefined;
  /**
   * The check at open (did this connection complete an upgrade?): under way, done, or completed it.
   * A boot that becomes ready while it runs is acted on after it (`readyWhileOpening`).
   */
  private opening: 'running' | 'done' | 'completed' = 'running';
  private readyWhileOpening = false;
  private running = false;
  /** Asked to consider while running: once more afterwards, skipping back-off if an operator asked. */
  private again: 'operator' | 'change' | null = null;
  private certificateRequested = false;
  private knownTarget: SecurityProfile | null | undefined;
  private knownRequest: number | undefined;
  /** When this connection was admitted: an Accepted switch sent before it and not reached means the switch failed. */
  private readonly openedAt: number;
  /** The serial number of the charger's BootNotification on this connection (2.x), when it sent one. */
  private bootSerial: string | undefined;
  /** The charger sent a BootNotification on this connection (it rebooted, or connected for the first time). */
  private bootedHere = false;

  constructor(
    private readonly deps: ProfileUpgradeDeps,
    private readonly now: () => number,
    private readonly identity: string,
    subprotocol: string,
    /** The stored record as read at admission. */
    private readonly admitted: ChargerRecord,
  ) {
    this.latestResult = admitted.profileUpgrade?.lastResult;
    this.boot = new BootWatch(this, admitted.bootState, subprotocol);
    this.knownTarget = admitted.targetProfile;
    this.knownRequest = admitted.profileUpgrade?.requestedAt;
    this.openedAt = now();
  }

  get name(): string {
    return 'profile-upgrade';
  }

  onOpen(s: SessionApi): void {
    this.session = s;
    this.completeIfReached(s, this.admitted).then(
      (completed) => this.opened(completed),
      (err: unknown) => {
        // The store refused the write (unavailable): the next session on this profile completes it.
        s.log.warn({ event: 'profile_upgrade_error', step: 'complete', err: String(err) });
        this.opened(false);
      },
    );
    this.boot.start(this.deps.bootWaitMs ?? 5000);
  }

  onBootReady(): void {
    const s = this.session;
    // Read the store only when the record at hand asks for an upgrade (the change feed brings any request).
    if (!s || !this.knownTarget || this.knownTarget <= this.configuredProfile(s, this.latestResult)) return;
    if (this.opening === 'running') this.readyWhileOpening = true;
    else if (this.opening === 'done') void this.consider(s);
  }

  private opened(completed: boolean): void {
    this.opening = completed ? 'completed' : 'done';
    if (!completed && this.readyWhileOpening && this.session) void this.consider(this.session);
    this.readyWhileOpening = false;
  }

  onCsmsAnswer(_s: SessionApi, call: AnsweredCall, answer: CallOutcome): void {
    this.boot.csmsAnswer(call, answer);
  }

  onClose(): void {
    this.boot.stop();
  }

  onChargerCall(s: SessionApi, call: ChargerCall): undefined {
    this.boot.chargerCall(call.action);
    if (call.action !== 'BootNotification') return undefined;
    this.bootedHere = true;
    if (s.subprotocol === 'ocpp1.6') return undefined;
    const serial = bootSerialNumber('2.0.1', call.payload) ?? '';
    this.bootSerial = serial;
    // Remembered for connections that send no BootNotification (a charger reconnecting without a reboot).
    if (serial !== this.admitted.bootSerialNumber) {
      this.deps.store.updateCharger(s.identity, { bootSerialNumber: serial })
        .catch((err: unknown) => s.log.warn({ event: 'boot_serial_not_saved', err: String(err) }));
    }
    return undefined;
  }

  onRecordChanged(s: SessionApi, record: ChargerRecord, routine: boolean): void {
    this.latestResult = record.profileUpgrade?.lastResult;
    // A new target is an operator request (skips back-off); other changes (our own writes, a
    // certificate being bound) just re-check, respecting back-off. A sweep's re-read acts only on a
    // request it brings (one whose change message was lost): retries stay where they were (a boot,
    // a reconnect, a change), not every sweep.
    const requestedAt = record.profileUpgrade?.requestedAt;
    const fresh = record.targetProfile !== this.knownTarget || (requestedAt !== undefined && requestedAt !== this.knownRequest);
    this.knownTarget = record.targetProfile;
    if (requestedAt !== undefined) this.knownRequest = requestedAt;
    if (routine && !fresh) return;
    if (record.targetProfile && record.targetProfile > this.configuredProfile(s, record.profileUpgrade?.lastResult)) void this.consider(s, fresh);
  }

  private audit(type: string, detail: Record<string, unknown> = {}): Promise<void> {
    return this.deps.store.appendAudit({ type, identity: this.identity, detail }).catch(() => undefined);
  }

  /**
   * The charger accepted the switch and came back below the target: counted as a failure and backed
   * off, and after MAX_NOT_REACHED of them the proxy stops asking (`gave_up`) until an operator asks
   * again. Without this each reconnect after `retryMs` redid the whole upgrade, a reboot each time.
   */
  private async notReached(s: SessionApi, state: ProfileUpgradeState): Promise<void> {
    const failures = (state.failures ?? 0) + 1;
    const gaveUp = failures >= MAX_NOT_REACHED;
    const next: ProfileUpgradeState = { failures, lastResult: gaveUp ? 'gave_up' : 'not_reached' };
    if (state.slot !== undefined) next.slot = state.slot;
    if (state.requestedAt !== undefined) next.requestedAt = state.requestedAt;
    if (state.ocppInterface) next.ocppInterface = state.ocppInterface;
    if (!gaveUp) next.nextAttemptAt = this.now() + Math.min(DAY, this.deps.retryMs * 2 ** (failures - 1));
    await this.deps.store.updateCharger(s.identity, { profileUpgrade: next });
    s.log.warn({ event: gaveUp ? 'profile_upgrade_gave_up' : 'profile_upgrade_not_reached', profile: s.profile, failures });
    await this.audit(gaveUp ? 'profile_upgrade_gave_up' : 'profile_upgrade_not_reached', { profile: s.profile, failures });
    this.deps.outcome?.('failed');
  }

  /**
   * On Profile 3 a 2.x charger's BootNotification must carry its certificate's CN as serial number
   * (B01.FR.11/12, `checkSerialNumber`), or each boot is refused. A charger whose last BootNotification
   * (on this connection, else as remembered in its record) carried a different serial number is not
   * switched: it would be locked out after its first reboot there. Nor is one never seen booting.
   */
  private serialCheck(s: SessionApi, record: ChargerRecord, target: SecurityProfile): 'serial_mismatch' | 'serial_unknown' | null {
    if (target !== 3 || !this.deps.checkSerialNumber || s.subprotocol === 'ocpp1.6') return null;
    const serial = this.bootSerial ?? record.bootSerialNumber;
    if (serial === undefined) {
      // Never seen it boot: its serial number cannot be checked, and a mismatch would show only
      // after the switch's reboot. Retried after back-off; its next boot tells.
      s.log.warn({ event: 'profile_upgrade_serial_unknown' });
      return 'serial_unknown';
    }
    // A BootNotification without a serial number passes the check on Profile 3 (it is optional).
    if (serial === '' || serial === expectedCommonName(record)) return null;
    s.log.warn({ event: 'profile_upgrade_serial_mismatch', serialNumber: serial, commonName: expectedCommonName(record) });
    return 'serial_mismatch';
  }

  /**
   * Whether the certificate bound to the charger can carry it on Profile 3: bound, issued for the CN
   * the charger must present now (its serial number may have changed since), not revoked, and not
   * expiring within a day. Otherwise the charger is first asked for a new one: switched to Profile 3
   * on a certificate the gate refuses, it would be locked out. A binding that does not say its CN
   * (written before bindings did) is not trusted to: a new certificate costs one CSR.
   */
  private async boundCertificateUsable(record: ChargerRecord): Promise<boolean> {
    const bound = record.certificate;
    if (!bound?.boundSerialHex || (bound.notAfter ?? 0) < this.now() + DAY) return false;
    if (bound.commonName !== expectedCommonName(record)) return false;
    return !(await this.deps.store.isRevoked(bound.boundSerialHex));
  }

  /**
   * The profile the charger is configured for, as far as this connection shows: the one it presented,
   * except a certificate sent beside a Basic password before any switch to 3 was accepted. That is
   * a charger on Profile 2 settings whose TLS stack sends the certificate it got (the CSR step) when
   * asked: raised to 3 on that, it would be refused the day it stops sending it, and the switch
   * itself would never be sent.
   */
  private configuredProfile(s: SessionApi, lastResult: string | undefined): SecurityProfile {
    const unasked = s.profile === 3 && admissionFacts(s.facts)?.basicWithCertificate === true && lastResult !== 'accepted';
    return unasked ? 2 : s.profile;
  }

  private async completeIfReached(s: SessionApi, record: ChargerRecord): Promise<boolean> {
    if (!record.targetProfile || this.configuredProfile(s, record.profileUpgrade?.lastResult) < record.targetProfile) return false;
    const proven = provenProfile(s);
    if (proven < record.targetProfile) {
      // On the new profile, but its credentials were not checked (report-only admission): raising the
      // minimum now would refuse the charger once the checks are enforced.
      s.log.warn({ event: 'profile_upgrade_unproven', profile: s.profile, target: record.targetProfile });
      return true;
    }
    // The target, not whatever the charger connected with: one that presents a certificate it was
    // not asked for is still configured for the target, and would be refused once it stops.
    const minProfile = Math.max(record.minProfile, record.targetProfile) as SecurityProfile;
    await this.deps.store.updateCharger(s.identity, { minProfile, targetProfile: null, profileUpgrade: { lastResult: 'completed' } });
    s.log.info({ event: 'profile_upgrade_completed', minProfile });
    await this.audit('profile_upgrade_completed', { minProfile });
    this.deps.outcome?.('committed');
    return true;
  }

  private async consider(s: SessionApi, operator = false): Promise<void> {
    const { deps, now } = this;
    if (this.running) {
      // Asked again while an attempt is under way (an operator's new request): run once more after it.
      this.again = this.again === 'operator' || operator ? 'operator' : 'change';
      return;
    }
    if (s.closed || !this.boot.allows('all')) return;
    this.running = true;
    // An operator's request may follow a change (a serial number set): a certificate is asked for again.
    if (operator) this.certificateRequested = false;
    try {
      const record = await deps.store.getCharger(s.identity);
      if (!record || !record.targetProfile || record.targetProfile <= this.configuredProfile(s, record.profileUpgrade?.lastResult)) return;
      const state = record.profileUpgrade ?? {};
      if (state.lastResult !== undefined && PARKED_RESULTS.has(state.lastResult)) return; // until an operator asks again
      if (state.lastResult === 'accepted' && state.sentAt) {
        // This connection predates the switch: the charger moves when it reconnects (Reset OnIdle
        // waits until it is idle, which can take hours). Asking again meanwhile would reboot it again.
        if (this.openedAt <= state.sentAt) return;
        // 2.x switches through a reboot (Reset OnIdle), and so does a 1.6 charger that answered
        // RebootRequired: a connection that sent no BootNotification is the old link back (a
        // network drop), not the charger after its reboot. (2.x records written before
        // `awaitsReboot` existed lack the flag, hence the protocol test too.)
        if ((s.subprotocol !== 'ocpp1.6' || state.awaitsReboot) && !this.bootedHere) return;
        // A later connection, still below the target: the switch failed and the charger fell back.
        return await this.notReached(s, state);
      }
      if (!operator && state.nextAttemptAt && state.nextAttemptAt > now()) return;
      const target = record.targetProfile;
      if (target === 3 && !(await this.boundCertificateUsable(record))) {
        if (s.profile === 1) {
          // A certificate is signed only over TLS (the CSR's password travelled in clear here): the
          // charger has to reach Profile 2 first. Said once, where the operator looks.
          if (state.lastResult !== 'needs_profile_2') {
            await deps.store.updateCharger(s.identity, { profileUpgrade: { ...state, lastResult: 'needs_profile_2' } });
            s.log.warn({ event: 'profile_upgrade_needs_profile_2' });
            await this.audit('profile_upgrade_needs_profile_2');
          }
          return;
        }
        if (!this.certificateRequested) {
          this.certificateRequested = true;
          const trigger = s.subprotocol === 'ocpp1.6'
            ? { action: 'ExtendedTriggerMessage', payload: { requestedMessage: 'SignChargePointCertificate' } }
            : { action: 'TriggerMessage', payload: { requestedMessage: 'SignChargingStationCertificate' } };
          s.log.info({ event: 'profile_upgrade_needs_certificate' });
          await this.audit('profile_upgrade_certificate_requested');
          await s.injectCall(trigger.action, trigger.payload, { timeoutMs: deps.callTimeoutMs }).catch(() => undefined);
        }
        return;
      }
      await this.upgrade(s, record, target);
    } catch (err) {
      s.log.warn({ event: 'profile_upgrade_error', err: String(err) });
    } finally {
      this.running = false;
      const again = this.again;
      this.again = null;
      if (again) void this.consider(s, again === 'operator');
    }
  }

  private async upgrade(s: SessionApi, record: ChargerRecord, target: SecurityProfile): Promise<void> {
    const { deps, now } = this;
    const from = this.configuredProfile(s, record.profileUpgrade?.lastResult);
    s.log.info({ event: 'profile_upgrade_started', from, to: target });
    await this.audit('profile_upgrade_started', { from, to: target });
    deps.outcome?.('started');
    const call = (c: { action: string; payload: Record<string, unknown> }) => {
      // The charger may have started booting since the decision (its BootNotification unanswered).
      if (!this.boot.allows('all')) throw Object.assign(new Error('boot in progress'), { reason: BOOT_IN_PROGRESS });
      return s.injectCall(c.action, c.payload, { timeoutMs: deps.callTimeoutMs });
    };
    let status = 'failed';
    let slot: number | undefined;
    /** The slot a SetNetworkProfile the charger accepted wrote. */
    let written: number | undefined;
    /** 1.6: the charger takes the new profile at its next reboot, which the proxy does not ask for. */
    let rebootRequired = false;
    const ocppInterface = record.profileUpgrade?.ocppInterface;
    try {
      const serialProblem = this.serialCheck(s, record, target);
      if (serialProblem) {
        status = serialProblem;
      } else if (s.subprotocol === 'ocpp1.6') {
        status = statusOf(await call(changeSecurityProfile(target)));
        rebootRequired = status === 'RebootRequired';
      } else if (!deps.publicUrl) {
        status = 'no_public_url';
      } else if (ocppInterface === 'Any' && s.subprotocol !== 'ocpp2.1') {
        status = ANY_NEEDS_21; // a 2.0.1 charger would reject the profile as invalid
      } else {
        const order = readNetworkPriority(await call(getNetworkPriority()));
        // Unknown priorities: a guessed slot could overwrite the profile the charger runs on.
        if (order.length === 0) throw Object.assign(new Error('no network priority'), { reason: 'priority_unknown' });
        for (const candidate of slotCandidates(order, record.profileUpgrade?.slot)) {
          slot = candidate;
          const answer = await call(setNetworkProfile(s.subprotocol, slot, deps.publicUrl, target, ocppInterface ?? defaultInterface(s.subprotocol)));
          status = statusWithReason(answer);
          if (OK.has(status)) written = slot;
          // A refused profile wrote nothing: the next slot may be one this charger has.
          if (OK.has(status) || !status.startsWith('Rejected')) break;
        }
        if (OK.has(status)) status = statusWithReason(await call(setNetworkPriority([slot!, ...order.filter((x) => x !== slot)])));
        if (OK.has(status)) status = statusWithReason(await call(resetOnIdle()));
      }
    } catch (err) {
      status = (err as { reason?: string }).reason ?? 'failed';
    }
    if (status === BOOT_IN_PROGRESS) {
      // Not the charger's refusal: the boot's answer brings the upgrade back (onBootReady).
      s.log.info({ event: 'profile_upgrade_paused', why: 'the charger is booting' });
      return;
    }
    // An operator's new request during the attempt supersedes it: its fresh state is not overwritten.
    const current = await deps.store.getCharger(s.identity);
    if (current?.profileUpgrade?.requestedAt !== record.profileUpgrade?.requestedAt) {
      s.log.info({ event: 'profile_upgrade_superseded', status });
      this.again = 'operator';
      return;
    }
    const requestedAt = record.profileUpgrade?.requestedAt;
    if (OK.has(status)) {
      const accepted: ProfileUpgradeState = { sentAt: now(), lastResult: 'accepted', failures: record.profileUpgrade?.failures ?? 0 };
      if (requestedAt !== undefined) accepted.requestedAt = requestedAt;
      if (written !== undefined) accepted.slot = written;
      // 2.x switches through Reset OnIdle; a 1.6 charger that answered RebootRequired at its next reboot.
      if (rebootRequired || s.subprotocol !== 'ocpp1.6') accepted.awaitsReboot = true;
      if (ocppInterface) accepted.ocppInterface = ocppInterface;
      await deps.store.updateCharger(s.identity, { profileUpgrade: accepted });
      const sent = { to: target, ...(written !== undefined ? { slot: written, ocppInterface: ocppInterface ?? defaultInterface(s.subprotocol) } : {}) };
      s.log.info({ event: 'profile_upgrade_accepted', ...sent });
      await this.audit('profile_upgrade_accepted', sent);
      deps.outcome?.('accepted');
      return;
    }
    const failures = (record.profileUpgrade?.failures ?? 0) + 1;
    // Parked (an interface this charger's version lacks): no next attempt until an operator asks again.
    const parked = status === ANY_NEEDS_21;
    const refused: ProfileUpgradeState = { lastResult: status.slice(0, 40), failures };
    if (!parked) refused.nextAttemptAt = now() + Math.min(DAY, deps.retryMs * 2 ** (failures - 1));
    const keptSlot = written ?? record.profileUpgrade?.slot; // written, or written before: the retry reuses it
    if (keptSlot !== undefined) refused.slot = keptSlot;
    if (requestedAt !== undefined) refused.requestedAt = requestedAt;
    if (ocppInterface) refused.ocppInterface = ocppInterface;
    await deps.store.updateCharger(s.identity, { profileUpgrade: refused });
    if (parked) s.log.warn({ event: 'profile_upgrade_refused', status, why: 'OCPP 2.0.1 has no interface Any: ask again with --ocpp-interface (Wired0..3, Wireless0..3)' });
    else s.log.info({ event: 'profile_upgrade_refused', status });
    await this.audit('profile_upgrade_refused', { status });
    const verdict = status.split(':')[0];
    deps.outcome?.(verdict === 'Rejected' || verdict === 'NotSupported' ? 'rejected' : 'failed');
  }
}
