import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { PeerCertificate } from 'node:tls';
import { isInNetworks, parseNetworks } from './cidr';
import type { ProxyConfig } from './config';
import { reloadingCaBundle } from './ca-bundle-file';
import { readForwardedCertificate, toPeerCertificate } from './forwarded-cert';
import { clientFromForwardedFor } from './forwarded-for';

/** What a trusted TLS-terminating front vouches for about one request. */
export interface EdgeFacts {
  /** The front terminated TLS for the charger (X-Forwarded-Proto: https). */
  tls: boolean;
  /** A client certificate the front forwarded, with our own verdict on it. */
  certificate: { peer: PeerCertificate; authorized: boolean; error: string | null } | null;
  /**
   * The charger's address from `X-Forwarded-For` (see forwarded-for.ts), or null when the front sent
   * none that could be read: then the connection's address is the front's own, shared by every
   * charger behind it.
   */
  clientAddress: string | null;
}

/** Reads a request's edge facts; null when the request did not come from a trusted front. */
export type EdgeReader = (req: IncomingMessage, socket: Duplex) => EdgeFacts | null;

/**
 * Builds the reader for requests arriving through a TLS-terminating front (configured networks only;
 * from anywhere else forwarded headers are ignored, so a charger cannot claim a certificate it does
 * not hold). Returns null when no trusted front is configured.
 */
export function edgeReader(c: Pick<ProxyConfig, 'trustedForwarderCidrs' | 'forwardedClientCertHeader' | 'clientCa'>, clientCaFile: string | null): EdgeReader | null {
  if (c.trustedForwarderCidrs.length === 0) return null;
  const trusted = parseNetworks(c.trustedForwarderCidrs);
  const caFile = clientCaFile ?? c.clientCa;
  const anchors = caFile ? reloadingCaBundle(caFile) : null;
  return (req, socket) => {
    const peerAddress = (socket as { remoteAddress?: string }).remoteAddress ?? '';
    if (!isInNetworks(trusted, peerAddress)) return null;
    // The rightmost value: a front that appends to the header (rather than replacing it) wrote the
    // last one; the ones before it may be the client's own.
    const proto = String(req.headers['x-forwarded-proto'] ?? '').split(',').pop()!.trim().toLowerCase();
    let certificate: EdgeFacts['certificate'] = null;
    if (c.forwardedClientCertHeader && anchors) {
      const f = readForwardedCertificate(req, { header: c.forwardedClientCertHeader, trusted, peerAddress, clientCa: anchors() });
      if (f?.certificate) certificate = { peer: toPeerCertificate(f.certificate), authorized: f.authorized, error: f.error };
      else if (f) certificate = null;
    }
    return { tls: proto === 'https' || proto === 'wss', certificate, clientAddress: clientFromForwardedFor(req.headers['x-forwarded-for'], trusted) };
  };
}
