/**
 * Close-code mapping between the two legs. Codes that may not be sent on the wire (1005 "no status",
 * 1006 "abnormal", 1015 "TLS failure") are replaced by one that tells the other side what to do.
 */

/** True when a close code may be sent in a close frame (RFC 6455 §7.4). */
export function isSendable(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/** The CSMS leg closed with `code`: what the charger gets. A lost CSMS means "come back later" (1012). */
export function codeForCharger(code: number): number {
  return isSendable(code) ? code : 1012;
}

/** The charger leg closed with `code`: what the CSMS gets. A lost charger is "going away" (1001). */
export function codeForCsms(code: number): number {
  return isSendable(code) ? code : 1001;
}

/** Close reasons are limited to 123 bytes on the wire. */
export function clampReason(reason: string): string {
  const buf = Buffer.from(reason);
  return buf.length <= 123 ? reason : buf.subarray(0, 123).toString().replace(/\uFFFD+$/, '');
}
