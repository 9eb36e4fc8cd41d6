import { dialectOf, type OcppDialect } from '../../proxy/ocpp/dialects';
import { duplicateKeyIn } from '../../proxy/ocpp/duplicate-keys';
import type { CredentialStore } from '../../proxy/store/types';
import type { CsmsCall, CsmsCallDecision, Interceptor, InterceptorFactory, SessionApi } from './types';

/** Dependencies of {@link csmsCredentialGuard}. */
export interface CsmsCredentialGuardDeps {
  /** Config `guardCsmsCalls` (default on). */
  enabled: boolean;
  /** Where refusals are audited; optional so the guard works without a store. */
  store?: CredentialStore;
}

/** Names of what the proxy manages on the charger, as the CSMS would set them (lower case: matched without case). */
const GUARDED_16_KEYS = new Set(['authorizationkey', 'securityprofile']);
const GUARDED_2X_VARIABLES = new Set(['securityctrlr.basicauthpassword', 'securityctrlr.identity', 'securityctrlr.securityprofile', 'ocppcommctrlr.networkconfigurationpriority']);

/** `reasonCode` of the 2.x answers (StatusInfoType: at most 20 characters). */
const REASON_CODE = 'ManagedByProxy';
const ADDITIONAL_INFO = 'credentials and security profile are managed by the security proxy in front of this CSMS';

/**
 * Keeps the legacy CSMS from changing, through the proxy, what the proxy manages on the charger: its
 * Basic password, identity, security profile and connection profiles. A password the CSMS sets (1.6
 * `ChangeConfiguration AuthorizationKey`, 2.x `SetVariables SecurityCtrlr.BasicAuthPassword`) is one
 * the store has never seen: the charger's next login would be refused, then locked out. Such a call
 * is answered `Rejected` to the CSMS in the charger's place and never forwarded (2.x `SetVariables`
 * as a whole, every item rejected: it cannot be half forwarded). Logged and audited with names only,
 * never a value. A guarded call whose payload repeats a key is refused too: the charger's parser
 * might read the other copy.
 */
export function csmsCredentialGuard(deps: CsmsCredentialGuardDeps): InterceptorFactory {
  const byDialect = new Map<OcppDialect, Interceptor>();
  return (session) => {
    const dialect = dialectOf(session.subprotocol);
    if (!deps.enabled || !dialect) return undefined;
    let guard = byDialect.get(dialect);
    if (!guard) {
      guard = { name: 'csms-credential-guard', onCsmsCall: (s, call, raw) => judge(s, dialect, call, raw) };
      byDialect.set(dialect, guard);
    }
    return guard;
  };

  function judge(s: SessionApi, dialect: OcppDialect, call: CsmsCall, raw: Buffer): CsmsCallDecision {
    if (dialect === '1.6') {
      if (call.action !== 'ChangeConfiguration') return undefined;
      const key = (call.payload as { key?: unknown } | null)?.key;
      if (typeof key === 'string' && GUARDED_16_KEYS.has(key.toLowerCase())) return refuse(s, call, [key], { status: 'Rejected' });
      return ambiguous(s, call, raw, { status: 'Rejected' });
    }
    if (call.action === 'SetNetworkProfile') {
      return refuse(s, call, ['SetNetworkProfile'], { status: 'Rejected', statusInfo: { reasonCode: REASON_CODE, additionalInfo: ADDITIONAL_INFO } });
    }
    if (call.action !== 'SetVariables') return undefined;
    const items = (call.payload as { setVariableData?: unknown } | null)?.setVariableData;
    if (!Array.isArray(items)) return undefined; // not a SetVariables the charger can act on: it answers itself
    const guarded = items.map(variableName).filter((name) => GUARDED_2X_VARIABLES.has(name.toLowerCase()));
    const answer = { setVariableResult: items.map(rejectedItem) };
    return guarded.length > 0 ? refuse(s, call, guarded, answer) : ambiguous(s, call, raw, answer);
  }

  /** A guarded action whose payload repeats a key: which copy the charger reads is anyone's guess. */
  function ambiguous(s: SessionApi, call: CsmsCall, raw: Buffer, answer: Record<string, unknown>): CsmsCallDecision {
    const duplicate = duplicateKeyIn(raw.toString());
    return duplicate === null ? undefined : refuse(s, call, [`duplicate key ${duplicate}`], answer);
  }

  function refuse(s: SessionApi, call: CsmsCall, names: string[], answer: Record<string, unknown>): CsmsCallDecision {
    const detail = { action: call.action, names };
    s.log.warn({ event: 'csms_call_refused', ...detail }, 'the CSMS tried to change what the proxy manages on the charger; answered Rejected');
    deps.store?.appendAudit({ type: 'csms_call_refused', identity: s.identity, detail })
      .catch((err: unknown) => s.log.error({ event: 'audit_failed', type: 'csms_call_refused', err: String(err) }));
    return { answer };
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
  const i = (item ?? {}) as { attributeType?: unknown; component?: unknown; variable?: unknown };
  return {
    ...(typeof i.attributeType === 'string' ? { attributeType: i.attributeType } : {}),
    attributeStatus: 'Rejected',
    component: i.component ?? {},
    variable: i.variable ?? {},
    attributeStatusInfo: { reasonCode: REASON_CODE, additionalInfo: ADDITIONAL_INFO },
  };
}
