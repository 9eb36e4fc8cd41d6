/**
 * The OCPP calls that set a charger's Basic password, per version, and how to read their answers.
 * 1.6: ChangeConfiguration AuthorizationKey, the key hex-encoded (≤ 40 hex digits, J16 §6.2.2,
 * WP2 §7.2). 2.0.1/2.1: SetVariables SecurityCtrlr.BasicAuthPassword, plain text.
 */
import type { CallOutcome } from '../interceptors/types';

/** A call to inject. */
export interface OcppCall {
  action: string;
  payload: Record<string, unknown>;
}

/** The call that gives the charger `password`. */
export function setPasswordCall(subprotocol: string, password: Buffer): OcppCall {
  if (subprotocol === 'ocpp1.6') {
    return { action: 'ChangeConfiguration', payload: { key: 'AuthorizationKey', value: password.toString('hex') } };
  }
  return {
    action: 'SetVariables',
    payload: { setVariableData: [{ component: { name: 'SecurityCtrlr' }, variable: { name: 'BasicAuthPassword' }, attributeValue: password.toString('utf8') }] },
  };
}

/**
 * The charger's verdict on a configuration change: `accepted` (Accepted, or RebootRequired: it will
 * use the new value after a reboot, so the new value must work from now on, and the old one until
 * then), or `refused` with the status or error code it gave.
 */
export function readConfigurationAnswer(subprotocol: string, outcome: CallOutcome): { accepted: true; rebootRequired: boolean } | { accepted: false; status: string } {
  if (outcome.kind === 'error') return { accepted: false, status: `callerror_${outcome.code}` };
  let status: unknown;
  if (subprotocol === 'ocpp1.6') status = outcome.payload.status;
  else {
    const results = outcome.payload.setVariableResult;
    status = Array.isArray(results) && results.length > 0 ? (results[0] as Record<string, unknown>).attributeStatus : undefined;
  }
  if (status === 'Accepted' || status === 'RebootRequired') return { accepted: true, rebootRequired: status === 'RebootRequired' };
  return { accepted: false, status: typeof status === 'string' ? status : 'malformed_answer' };
}
