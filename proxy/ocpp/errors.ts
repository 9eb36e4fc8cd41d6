/**
 * The OCPP-J RPC error vocabulary per version, and the frames the proxy sends when it has to
 * answer something itself.
 */
import type { FrameProblem } from './frame';

/** True for the OCPP 2.x subprotocols (error names were corrected there). */
export function isOcpp2(subprotocol: string): boolean {
  return subprotocol.startsWith('ocpp2');
}

/** `FormationViolation` in 1.6 (spelling kept by the errata), `FormatViolation` in 2.x. */
export function formatViolation(subprotocol: string): string {
  return isOcpp2(subprotocol) ? 'FormatViolation' : 'FormationViolation';
}

/**
 * Serialises a CALLERROR. The description is cut to the 255 characters 2.x allows. The id is a
 * number only when it answers a CSMS call whose id was one (see readFrame).
 */
export function callError(id: string | number, code: string, description: string, details: Record<string, unknown> = {}): string {
  return JSON.stringify([4, id, code, description.slice(0, 255), details]);
}

/** Serialises a CALLRESULT. */
export function callResult(id: string | number, payload: Record<string, unknown>): string {
  return JSON.stringify([3, id, payload]);
}

/** Serialises a CALL. */
export function call(id: string, action: string, payload: Record<string, unknown>): string {
  return JSON.stringify([2, id, action, payload]);
}

/**
 * What OCPP-J tells a receiver to send back for a frame it cannot process, or null when the
 * frame must just be dropped:
 * - unknown message type: 2.0.1 answers `MessageTypeNotSupported`; 1.6 and 2.1 ignore it;
 * - unreadable id (bad JSON, not an array, bad id): CALLERROR with id "-1" (`RpcFrameworkError` in 2.x,
 *   `FormationViolation` in 1.6, which has no better code);
 * - a CALL with a readable id but a bad shape: CALLERROR with that id and a format violation;
 * - a malformed answer (CALLRESULT/CALLERROR): never answered, an answer to an answer would loop.
 */
export function answerForProblem(p: FrameProblem, subprotocol: string): string | null {
  if (p.problem === 'unknown_type') {
    return subprotocol === 'ocpp2.0.1' || subprotocol === 'ocpp2.0'
      ? callError(p.id ?? '-1', 'MessageTypeNotSupported', p.detail)
      : null;
  }
  if (p.id === undefined) {
    return callError('-1', isOcpp2(subprotocol) ? 'RpcFrameworkError' : formatViolation(subprotocol), p.detail);
  }
  if (p.type === 2 || p.type === 6) {
    // SEND (2.1) must never be answered, even when broken.
    return p.type === 2 ? callError(p.id, formatViolation(subprotocol), p.detail) : null;
  }
  return null;
}
