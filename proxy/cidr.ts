/**
 * Source networks from configuration ("10.0.0.0/8", "fd00::/8", "192.0.2.7") as a `net.BlockList`,
 * the one type the PROXY-protocol listener and the forwarded-certificate reader check peers against.
 * `net.BlockList` already matches IPv4-mapped IPv6 peers ("::ffff:10.1.2.3", what a dual-stack
 * listener reports) against IPv4 rules, so this file only parses and checks.
 */
import net from 'node:net';

/** Raised for a network entry that is not an address or address/prefix. */
export class CidrError extends Error {
  readonly reason = 'cidr_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'CidrError';
  }
}

/**
 * Parses a list of networks into a BlockList. Each entry is an IPv4/IPv6 address (a single host)
 * or `address/prefix`. An empty list gives an empty BlockList, which trusts nobody.
 * @throws CidrError naming the offending entry.
 */
export function parseNetworks(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const raw of entries) {
    const entry = String(raw).trim();
    const slash = entry.indexOf('/');
    const address = slash < 0 ? entry : entry.slice(0, slash);
    const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
    if (!family) throw new CidrError(`"${entry}" is not an IP address or network (expected e.g. 10.0.0.0/8 or fd00::/8)`);
    if (slash < 0) {
      list.addAddress(address, family);
      continue;
    }
    const prefixText = entry.slice(slash + 1);
    const max = family === 'ipv4' ? 32 : 128;
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      throw new CidrError(`"${entry}" has an invalid prefix length (0-${max} for ${family === 'ipv4' ? 'IPv4' : 'IPv6'})`);
    }
    list.addSubnet(address, Number(prefixText), family);
  }
  return list;
}

/** True when `address` (as Node reports a peer, IPv4, IPv6 or IPv4-mapped) is inside `networks`. */
export function isInNetworks(networks: net.BlockList, address: string | undefined): boolean {
  if (!address) return false;
  const family = net.isIPv4(address) ? 'ipv4' : net.isIPv6(address) ? 'ipv6' : null;
  return family !== null && networks.check(address, family);
}

/** The compressed form Node itself reports for IPv6 peers, so logs and rate-limit keys agree. */
export function canonicalIPv6(address: string): string {
  return new net.SocketAddress({ address, family: 'ipv6' }).address;
}
