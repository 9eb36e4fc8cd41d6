import { dialectOf, type OcppDialect } from '../../proxy/ocpp/dialects';
import { duplicateKeyIn } from '../../proxy/ocpp/duplicate-keys';
import { formatViolation } from '../../proxy/ocpp/errors';
import { LogBudget } from '../../proxy/log-budget';
import type { CredentialStore } from '../../proxy/store/types';
import type { CsmsCall, CsmsCallDecision, Interceptor, InterceptorFactory, SessionApi } from './types';

/** Dependencies of {@link csmsCredentialGuard}. */
export interface CsmsCredentialGuardDeps {
  /** Config `guardCsmsCalls` (default on). */
  enabled: boolean;
  /** Where refusals are audited; optional so the guard works without a store. */
  store?: CredentialStore;
}

/** What the proxy manages on the charger, as the CSMS would set it (lower case: matched without case). */
const GUARDED_ACTIONS = new Set(['changeconfiguration', 'setvariables', 'setnetworkprofile']);
/** 1.6 configuration keys: the Basic password, the profile, and the CSR's organisation (the signer checks it). */
const GUARDED_16_KEYS = new Set(['authorizationkey', 'securityprofile', 'cponame']);
const GUARDED_2X_VARIABLES = new Set([
  'securityctrlr.basicauthpassword', 'securityctrlr.identity', 'securityctrlr.securityprofile', 'securityctrlr.organizationname',
  'ocppcommctrlr.networkconfigurationpriority',
]);

/** `reasonCode` of the 2.x answers (StatusInfoType: at most 20 characters). */
const REASON_CODE = 'ManagedByProxy';
const ADDITIONAL_INFO = 'credentials and security profile are managed by the security proxy in front of this CSMS';
/** Refusals logged per session and minute (a CSMS may push the same setting at every boot). */
const REFUSALS_LOGGED_PER_MINUTE = 5;
/** Longest name a log line or audit event carries (they come from the CSMS). */
const MAX_NAME_CHARS = 64;

/**
 * Keeps the legacy CSMS from changing, through the proxy, what the proxy manages on the charger: its
 * Basic password, identity, security profile, connection profiles and the organisation its CSRs
 * must name. A password the CSMS sets (1.6 `ChangeConfiguration AuthorizationKey`, 2.x
 * `SetVariables SecurityCtrlr.BasicAuthPassword`) is one the store has never seen: the charger's
 * next login would be refused, then locked out. Such a call is answered `Rejected` to the CSMS in
 * the charger's place and never forwarded (2.x `SetVariables` as a whole, every item rejected: it
 * cannot be half forwarded). A call of these actions that repeats a key (compared without case, as
 * some parsers bind them) is refused too: the charger's parser might read the other copy. One too
 * malformed to answer in its schema gets a CALLERROR. Logged (a few lines a minute per session) and
 * audited once per session and action, with names only, never a value.
 */
export function csmsCredentialGuard(deps: CsmsCredentialGuardDeps): InterceptorFactory {
  const byDialect = new Map<OcppDialect, Interceptor>();
  const seen = new WeakMap<SessionApi, { lines: LogBudget; audited: Set<string> }>();
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    if (!deps.enabled || !dialect) return undefined;
    let guard = byDialect.get(dialect);
    if (!guard) {
      guard = { name: 'csms-credential-guard', onCsmsCall: (s, call, raw) => (GUARDED_ACTIONS.has(call.action.toLowerCase()) ? judge(s, dialect, call, raw) : undefined) };
      byDialect.set(dialect, guard);
    }
    return guard;
  };

  function judge(s: SessionApi, dialect: OcppDialect, call: CsmsCall, raw: Buffer): CsmsCallDecision {
    const action = call.action.toLowerCase();
    // First: with a key twice, what the charger reads is anyone's guess, whatever JSON.parse reads.
    const duplicate = duplicateKeyIn(raw.toString(), true);
    if (dialect === '1.6') {
      if (action !== 'changeconfiguration') return undefined;
      if (duplicate !== null) return refuse(s, call, [`duplicate key ${duplicate}`], { status: 'Rejected' });
      const key = (call.payload as { key?: unknown } | null)?.key;
      return typeof key === 'string' && GUARDED_16_KEYS.has(key.toLowerCase()) ? refuse(s, call, [key], { status: 'Rejected' }) : undefined;
    }
    if (action === 'setnetworkprofile') {
      return refuse(s, call, [call.action], { status: 'Rejected', statusInfo: { reasonCode: REASON_CODE, additionalInfo: ADDITIONAL_INFO } });
    }
    if (action !== 'setvariables') return undefined;
    const items = (call.payload as { setVariableData?: unknown } | null)?.setVariableData;
    const names = Array.isArray(items) ? items.map(variableName) : [];
    const guarded = names.filter((name) => GUARDED_2X_VARIABLES.has(name.toLowerCase()));
    if (duplicate === null && guarded.length === 0) return undefined;
    const why = duplicate !== null ? [`duplicate key ${duplicate}`] : guarded;
    // Every item is answered in the charger's place; one without its names cannot be, in the schema.
    if (!Array.isArray(items) || items.length === 0 || names.includes('')) {
      return refuse(s, call, why, null, { code: formatViolation(s.subprotocol), description: 'SetVariables refused by the security proxy: malformed or ambiguous' });
    }
    return refuse(s, call, why, { setVariableResult: items.map(rejectedItem) });
  }

  function refuse(s: SessionApi, call: CsmsCall, names: string[], answer: Record<string, unknown> | null, error?: { code: string; description: string }): CsmsCallDecision {
    const detail = { action: call.action.slice(0, MAX_NAME_CHARS), names: names.map((n) => n.slice(0, MAX_NAME_CHARS)) };
    let state = seen.get(s);
    if (!state) seen.set(s, (state = { lines: new LogBudget(REFUSALS_LOGGED_PER_MINUTE, 60_000), audited: new Set() }));
    const verdict = state.lines.take();
    if (verdict.log) {
      s.log.warn({ event: 'csms_call_refused', ...detail, ...(verdict.suppressedBefore > 0 ? { suppressedBefore: verdict.suppressedBefore } : {}) },
        'the CSMS tried to change what the proxy manages on the charger; answered Rejected');
    }
    if (!state.audited.has(detail.action)) {
      state.audited.add(detail.action);
      deps.store?.appendAudit({ type: 'csms_call_refused', identity: s.identity, detail })
        .catch((err: unknown) => s.log.error({ event: 'audit_failed', type: 'csms_call_refused', err: String(err) }));
    }
    return error ? { error } : { answer: answer! };
  }
}

/** `Component.Variable` of a SetVariableData item ('' for a malformed one). */
function variableName(item: unknown): string {
  const i = item as { component?: { name?: unknown }; variable?: { name?: unknown } } | null;
  const component = i?.component?.name;
  const variable = i?.variable?.name;
  return typeof component === 'string' && typeof variable === 'string' ? `${component}.${variable}` : '';
}

/** The SetVariableResult rejecting one item, echoing what it named. */
function rejectedItem(item: unknown): Record<string, unknown> {
  const i = item as { attributeType?: unknown; component: unknown; variable: unknown };
  return {
    ...(typeof i.attributeType === 'string' ? { attributeType: i.attributeType } : {}),
    attributeStatus: 'Rejected',
    component: i.component,
    variable: i.variable,
    attributeStatusInfo: { reasonCode: REASON_CODE, additionalInfo: ADDITIONAL_INFO },
  };
}
