import type { CredentialStore } from '../../proxy/store/types';
import { admissionFacts } from '../gates/facts';
import type { AnsweredCall, CallOutcome, Interceptor, InterceptorFactory } from './types';

/** The CSMS's verdict on a BootNotification, or undefined for anything else. */
export function bootStatusOf(call: AnsweredCall, answer: CallOutcome): 'Accepted' | 'Pending' | 'Rejected' | undefined {
  if (call.action !== 'BootNotification' || answer.kind !== 'result') return undefined;
  const s = answer.payload.status;
  return s === 'Accepted' || s === 'Pending' || s === 'Rejected' ? s : undefined;
}

/**
 * Remembers, per charger in the store, how the CSMS last answered its BootNotification. A charger
 * that reconnects normally sends no new BootNotification, so this is how the proxy knows, on the next
 * connection, that it may inject calls (and must not after Rejected).
 */
export function bootState(deps: { store: CredentialStore }): InterceptorFactory {
  // Stateless per session: one interceptor shared by every session with a stored record.
  const shared: Interceptor = {
    name: 'boot-state',
    onCsmsAnswer(s, call, answer) {
      const status = bootStatusOf(call, answer);
      if (!status) return;
      s.log.info({ event: 'boot_state', status });
      deps.store.updateCharger(s.identity, { bootState: status, bootAt: Date.now() }).catch((err: unknown) => {
        s.log.warn({ event: 'boot_state_store_failed', err: String(err) });
      });
    },
  };
  return (session) => (admissionFacts(session.facts) ? shared : undefined);
}
