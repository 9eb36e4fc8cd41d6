/**
 * The charger's client certificate as forwarded by a trusted TLS-terminating front: Envoy's
 * `x-forwarded-client-cert` (XFCC) or RFC 9440 `Client-Cert` (+ `Client-Cert-Chain`).
 *
 * The header is believed only from the configured front networks and ignored entirely otherwise
 * (a charger could type it). No TLS stack checked the certificate against our client CA, so it is
 * verified here: the chain must reach one of the CA certificates and every certificate on it must
 * be within validity. Failures carry the same labels Node's TLS uses (`CERT_HAS_EXPIRED`, ...), so
 * gates treat a forwarded certificate exactly like one from our own TLS listener.
 *
 * The front must replace (not append to) whatever header the charger sent: Envoy
 * `forward_client_cert_details: SANITIZE_SET` with `set_current_client_cert_details: {cert: true,
 * chain: true}`; for RFC 9440 fronts, stripping incoming `Client-Cert*` is required by the RFC.
 */
import { X509Certificate } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type net from 'node:net';
import type { PeerCertificate } from 'node:tls';
import { splitPemCertificates } from '../certs/build';
import { isInNetworks } from './cidr';

/** Where the certificate travels. */
export type ForwardedCertFormat = 'xfcc' | 'rfc9440';

/** Options of {@link readForwardedCertificate}. */
export interface ForwardedCertOptions {
  /** Header name, e.g. `x-forwarded-client-cert` or `client-cert` (case-insensitive). */
  header: string;
  /** Default: 'rfc9440' for a header named `client-cert`, else 'xfcc'. */
  format?: ForwardedCertFormat;
  /** Fronts allowed to forward certificates. */
  trusted: net.BlockList;
  /** The immediate TCP peer of this request (`socket.remoteAddress`, never a forwarded address). */
  peerAddress: string;
  /** The client CA: certificates, or a PEM bundle (parse once with {@link parseCaBundle} for speed). */
  clientCa: X509Certificate[] | string;
  /** Clock for validity checks (tests). */
  now?: Date;
}

/** A forwarded certificate and our verdict on it. */
export interface ForwardedCertificate {
  /** The leaf; null when the header was present but unusable (then `error` says why). */
  certificate: X509Certificate | null;
  /** Other certificates the front forwarded (candidate intermediates). */
  chain: X509Certificate[];
  /** True when the leaf chains to the client CA and everything on the chain is within validity. */
  authorized: boolean;
  /** Null when authorized; else a label: a Node/OpenSSL verify code or `FORWARDED_CERT_MALFORMED`/`FORWARDED_CERT_MISSING`. */
  error: string | null;
}

/** Intermediates allowed between the leaf and a CA certificate. */
const MAX_INTERMEDIATES = 4;

/** Parses a PEM bundle into certificates. @throws Error when a block is not a certificate. */
export function parseCaBundle(pem: string): X509Certificate[] {
  return splitPemCertificates(pem).map((block) => new X509Certificate(block));
}

/**
 * Reads the forwarded client certificate of `req`. Returns null when the peer is not a trusted
 * front (the header is then ignored, whatever it says) or when the header is absent.
 */
export function readForwardedCertificate(req: { headers: IncomingHttpHeaders }, opts: ForwardedCertOptions): ForwardedCertificate | null {
  if (!isInNetworks(opts.trusted, opts.peerAddress)) return null;
  const name = opts.header.toLowerCase();
  const value = headerText(req.headers, name);
  if (!value) return null;
  const format = opts.format ?? (name === 'client-cert' ? 'rfc9440' : 'xfcc');
  let parsed: { leaf: X509Certificate | null; chain: X509Certificate[] };
  try {
    parsed = format === 'rfc9440' ? fromRfc9440(value, headerText(req.headers, `${name}-chain`)) : fromXfcc(value);
  } catch {
    return { certificate: null, chain: [], authorized: false, error: 'FORWARDED_CERT_MALFORMED' };
  }
  if (!parsed.leaf) return { certificate: null, chain: parsed.chain, authorized: false, error: 'FORWARDED_CERT_MISSING' };
  const anchors = typeof opts.clientCa === 'string' ? parseCaBundle(opts.clientCa) : opts.clientCa;
  const error = verifyChain(parsed.leaf, parsed.chain, anchors, opts.now ?? new Date());
  return { certificate: parsed.leaf, chain: parsed.chain, authorized: error === null, error };
}

/**
 * The certificate in the shape `UpgradeContext.peerCertificate` holds (what `getPeerCertificate()`
 * returns): subject/issuer fields, uppercase hex `serialNumber`, `valid_from`/`valid_to`,
 * `fingerprint256`, `raw`.
 */
export function toPeerCertificate(certificate: X509Certificate): PeerCertificate {
  return certificate.toLegacyObject();
}

function headerText(headers: IncomingHttpHeaders, name: string): string {
  const v = headers[name];
  return (Array.isArray(v) ? v.join(',') : v ?? '').trim();
}

/**
 * XFCC: elements separated by ',' (one per hop; the first is the client side), each a ';'-separated
 * list of Key=Value with values optionally double-quoted. `Cert` is the URL-encoded PEM leaf,
 * `Chain` the URL-encoded PEM chain (leaf included).
 */
function fromXfcc(value: string): { leaf: X509Certificate | null; chain: X509Certificate[] } {
  const first = parseXfccElements(value)[0] ?? new Map<string, string>();
  const certPem = first.get('cert');
  const chainPem = first.get('chain');
  const chainCerts = chainPem ? splitPemCertificates(decodeURIComponent(chainPem)).map((b) => new X509Certificate(b)) : [];
  const certBlocks = certPem ? splitPemCertificates(decodeURIComponent(certPem)) : [];
  if (certPem && certBlocks.length === 0) throw new Error('XFCC Cert is not a PEM certificate');
  const leaf = certBlocks.length > 0 ? new X509Certificate(certBlocks[0]) : chainCerts[0] ?? null;
  const chain = chainCerts.filter((c) => !leaf || c.fingerprint256 !== leaf.fingerprint256);
  return { leaf, chain };
}

/** Splits an XFCC value into elements of lower-cased keys, honouring quotes and backslash escapes. */
export function parseXfccElements(value: string): Map<string, string>[] {
  const elements: Map<string, string>[] = [];
  let pairs = new Map<string, string>();
  let key = '';
  let text = '';
  let inKey = true;
  let quoted = false;
  const endPair = () => {
    const k = key.trim().toLowerCase();
    if (!inKey && k && !pairs.has(k)) pairs.set(k, text.trim());
    else if (inKey && (key.trim() || text.trim())) throw new Error('XFCC pair without "="');
    key = '';
    text = '';
    inKey = true;
  };
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (quoted) {
      if (ch === '\\' && i + 1 < value.length) text += value[++i];
      else if (ch === '"') quoted = false;
      else text += ch;
    } else if (ch === '"' && !inKey) {
      quoted = true;
    } else if (ch === '=' && inKey) {
      inKey = false;
    } else if (ch === ';' || ch === ',') {
      endPair();
      if (ch === ',') {
        elements.push(pairs);
        pairs = new Map();
      }
    } else if (inKey) {
      key += ch;
    } else {
      text += ch;
    }
  }
  if (quoted) throw new Error('XFCC unterminated quote');
  endPair();
  elements.push(pairs);
  return elements;
}

/** RFC 9440: `Client-Cert: :<base64 DER>:` (an sf-binary item, parameters ignored); chain is a list of those. */
function fromRfc9440(value: string, chainValue: string): { leaf: X509Certificate | null; chain: X509Certificate[] } {
  const leaf = new X509Certificate(sfBinary(value));
  const chain = chainValue ? chainValue.split(',').map((item) => new X509Certificate(sfBinary(item))) : [];
  return { leaf, chain: chain.filter((c) => c.fingerprint256 !== leaf.fingerprint256) };
}

function sfBinary(item: string): Buffer {
  const m = /^:([A-Za-z0-9+/]*={0,2}):(?:;.*)?$/.exec(item.trim());
  if (!m || m[1].length % 4 !== 0) throw new Error('not a structured-field byte sequence');
  return Buffer.from(m[1], 'base64');
}

/** Extended key usages that let a certificate authenticate a TLS client (as OpenSSL's client purpose check). */
const CLIENT_AUTH_USAGES = new Set(['1.3.6.1.5.5.7.3.2']); // clientAuth (anyExtendedKeyUsage alone is refused by OpenSSL too)

/**
 * Walks leaf → intermediates → one of `anchors`, checking issuer names, signatures, CA flags and
 * validity, and that the leaf may authenticate a client (an extended key usage, when it has one,
 * names clientAuth, as the TLS listener requires). Returns null when the chain holds, else a
 * Node/OpenSSL-style verify code.
 */
export function verifyChain(leaf: X509Certificate, intermediates: X509Certificate[], anchors: X509Certificate[], now: Date): string | null {
  if (leaf.keyUsage !== undefined && !leaf.keyUsage.some((u) => CLIENT_AUTH_USAGES.has(u))) return 'INVALID_PURPOSE';
  let current = leaf;
  let signatureFailure = false;
  const used = new Set<string>([leaf.fingerprint256]);
  for (let depth = 0; depth <= MAX_INTERMEDIATES; depth++) {
    const dated = validityError(current, now);
    if (dated) return dated;
    const named = anchors.filter((a) => current.checkIssued(a)); // "current was issued by a"
    const anchor = named.find((a) => current.verify(a.publicKey));
    if (anchor) return validityError(anchor, now);
    if (named.length > 0) signatureFailure = true;
    const next = intermediates.find((c) => !used.has(c.fingerprint256) && c.ca && current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) return signatureFailure ? 'CERT_SIGNATURE_FAILURE' : 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY';
    used.add(next.fingerprint256);
    current = next;
  }
  return 'CERT_CHAIN_TOO_LONG';
}

function validityError(cert: X509Certificate, now: Date): string | null {
  if (now.getTime() < Date.parse(cert.validFrom)) return 'CERT_NOT_YET_VALID';
  if (now.getTime() > Date.parse(cert.validTo)) return 'CERT_HAS_EXPIRED';
  return null;
}
