/**
 * The charger's address as a trusted TLS-terminating front reports it in `X-Forwarded-For`.
 *
 * Behind such a front every connection comes from the front's own address, so without this the
 * per-address lockout, the per-address connection cap and the familiar-address rule would treat the
 * whole fleet as one client (one charger guessing could lock all of them out). Each proxy on the way
 * appends the address it saw, so the list is read from the right: entries inside the trusted
 * networks are fronts of the operator's own and are skipped; the first one outside them is the
 * address that reached the operator's edge, the only entry no client can have written. Anything to
 * its left was written by the client or by networks nobody vouches for, and is never read.
 *
 * When every entry is inside the trusted networks the rightmost is taken: the address the last front
 * saw (a client inside the operator's networks, or `trustedForwarderCidrs` naming more than the
 * fronts); the entries left of it could have been written by that client.
 *
 * Doubt means no address: an unparsable entry met on the way gives null, and the caller keeps the
 * front's own address (shared by every charger behind it; see `EdgeFacts.clientAddress`).
 */
import net from 'node:net';
import { canonicalIPv6, isInNetworks } from './cidr';

/** Entries read from the right before giving up (a front chain is a few hops, never dozens). */
const MAX_HOPS = 16;

/**
 * Reads the client address from `X-Forwarded-For` as Node presents it (duplicate headers joined
 * with ", "). Returns null when the header is absent or empty, when an entry met before the client
 * address is malformed, or when more than {@link MAX_HOPS} trusted entries precede it; when every
 * entry is trusted, the rightmost.
 */
export function clientFromForwardedFor(header: string | string[] | undefined, trusted: net.BlockList): string | null {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text) return null;
  const entries = text.split(',');
  let rightmost: string | null = null;
  for (let i = entries.length - 1, hops = 0; i >= 0 && hops < MAX_HOPS; i--, hops++) {
    const address = parseEntry(entries[i]!);
    if (address === null) return null;
    if (!isInNetworks(trusted, address)) return address;
    rightmost ??= address;
  }
  return entries.length <= MAX_HOPS ? rightmost : null;
}

/**
 * One list entry: an IPv4 or IPv6 address, optionally with a port as some balancers write it
 * (`192.0.2.1:4711`, `[2001:db8::1]:4711`). IPv6 is written in the compressed form Node reports
 * peers in, so one address is one lockout key however the front spells it.
 * Null for anything else (`unknown`, obfuscated identifiers, zone ids, garbage).
 */
function parseEntry(raw: string): string | null {
  const entry = raw.trim();
  if (net.isIPv4(entry)) return entry;
  if (entry.startsWith('[')) {
    const close = entry.indexOf(']');
    const rest = entry.slice(close + 1);
    if (close < 0 || (rest !== '' && !/^:\d{1,5}$/.test(rest))) return null;
    return ipv6(entry.slice(1, close));
  }
  const v4WithPort = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/.exec(entry);
  if (v4WithPort) return net.isIPv4(v4WithPort[1]!) ? v4WithPort[1]! : null;
  return ipv6(entry);
}

function ipv6(text: string): string | null {
  return !text.includes('%') && net.isIPv6(text) ? canonicalIPv6(text) : null;
}
