/**
 * The OCPP calls of a security-profile upgrade (OCPP-SECURITY.md §4), per version:
 * 1.6: ChangeConfiguration SecurityProfile; 2.x: SetNetworkProfile into a free slot, SetVariables
 * OCPPCommCtrlr.NetworkConfigurationPriority with that slot first, then Reset OnIdle.
 */
import type { OcppInterface } from '../../proxy/store/types';
import type { CallOutcome } from './types';

/** `Any` asked for a 2.0.1 charger, which has no such interface. */
export const ANY_NEEDS_21 = 'interface_any_needs_ocpp2.1';
/** Results after which the proxy waits for an operator's new request (five switches not reached, or `Any` on 2.0.1). */
export const PARKED_RESULTS: ReadonlySet<string> = new Set(['gave_up', ANY_NEEDS_21]);

/** 1.6: raise the charger's SecurityProfile configuration key. */
export function changeSecurityProfile(target: number): { action: string; payload: Record<string, unknown> } {
  return { action: 'ChangeConfiguration', payload: { key: 'SecurityProfile', value: String(target) } };
}

/** 2.x: read the charger's current NetworkConfigurationPriority (comma-separated slot list). */
export function getNetworkPriority(): { action: string; payload: Record<string, unknown> } {
  return { action: 'GetVariables', payload: { getVariableData: [{ component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' } }] } };
}

/** The slot list from a GetVariables answer ([] when unknown). */
export function readNetworkPriority(outcome: CallOutcome): number[] {
  if (outcome.kind !== 'result') return [];
  const r = (outcome.payload.getVariableResult as Record<string, unknown>[] | undefined)?.[0];
  if (!r || r.attributeStatus !== 'Accepted' || typeof r.attributeValue !== 'string') return [];
  return r.attributeValue.split(',').map((x) => Number(x.trim())).filter((n) => Number.isInteger(n) && n >= 0);
}

/**
 * The interface a new connection profile names when the operator named none: 2.1 has `Any`; 2.0.1
 * must name one, and `Wired0` is its first.
 */
export function defaultInterface(subprotocol: string): OcppInterface {
  return subprotocol === 'ocpp2.1' ? 'Any' : 'Wired0';
}

/** 2.x: the new connection profile, pointing at the proxy's public URL with the higher profile. */
export function setNetworkProfile(subprotocol: string, slot: number, csmsUrl: string, target: number, ocppInterface: OcppInterface): { action: string; payload: Record<string, unknown> } {
  return {
    action: 'SetNetworkProfile',
    payload: {
      configurationSlot: slot,
      connectionData: {
        ocppVersion: subprotocol === 'ocpp2.1' ? 'OCPP21' : 'OCPP20',
        ocppTransport: 'JSON',
        ocppCsmsUrl: csmsUrl,
        messageTimeout: 30,
        securityProfile: target,
        ocppInterface,
      },
    },
  };
}

/** 2.x: put `slot` first, keeping the old slots as fall-backs (B10.FR.07). */
export function setNetworkPriority(order: number[]): { action: string; payload: Record<string, unknown> } {
  return {
    action: 'SetVariables',
    payload: { setVariableData: [{ component: { name: 'OCPPCommCtrlr' }, variable: { name: 'NetworkConfigurationPriority' }, attributeValue: order.join(',') }] },
  };
}

/** 2.x: reboot when idle so the charger connects with the new profile. */
export function resetOnIdle(): { action: string; payload: Record<string, unknown> } {
  return { action: 'Reset', payload: { type: 'OnIdle' } };
}

/** Status of an answer: `status` (1.6 / SetNetworkProfile / Reset) or the first `attributeStatus` (SetVariables). */
export function statusOf(outcome: CallOutcome): string {
  if (outcome.kind === 'error') return `callerror_${outcome.code}`;
  if (typeof outcome.payload.status === 'string') return outcome.payload.status;
  const r = (outcome.payload.setVariableResult as Record<string, unknown>[] | undefined)?.[0];
  return typeof r?.attributeStatus === 'string' ? r.attributeStatus : 'malformed_answer';
}

/**
 * `statusOf`, with the charger's reason code after a colon when it gave one (`statusInfo`, or a
 * SetVariables result's `attributeStatusInfo`), e.g. `Rejected:InvalidConfSlot`: what an operator
 * needs to fix a refusal.
 */
export function statusWithReason(outcome: CallOutcome): string {
  const status = statusOf(outcome);
  if (outcome.kind === 'error') return status;
  const p = outcome.payload;
  const info = (p.statusInfo ?? (p.setVariableResult as Record<string, unknown>[] | undefined)?.[0]?.attributeStatusInfo) as Record<string, unknown> | undefined;
  const reason = info?.reasonCode;
  return typeof reason === 'string' && /^[\w.-]{1,20}$/.test(reason) ? `${status}:${reason}` : status;
}
