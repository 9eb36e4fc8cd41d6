/**
 * Public API of the PKI module: keys, CAs, leaf issuing, CSR signing, the development PKI,
 * certificate facts / serial normalisation and the `certs` CLI. Imports nothing else of ours.
 */
export { generateKeyPair, generateDefaultKeyPair, describeKey } from './keys';
export type { KeyType, RsaBits, EcCurve, KeySpec, KeyPairPem, KeyDescription } from './keys';
export { createRootCa, createIntermediateCa, saveCa, loadCa, CaError } from './ca';
export type { CertificateAuthority, CaOptions, CaErrorReason } from './ca';
export { issueServerCertificate, issueChargerCertificate, IssueError, chargerKeyUsage } from './issue';
export type { IssuedCertificate, ServerCertificateOptions, ChargerCertificateOptions } from './issue';
export { inspectCsr, signCsr, policyFailure, CsrError } from './csr';
export type { CsrInfo, CsrPolicy, SignCsrResult, CsrFailureReason } from './csr';
export { ensureDevPki, DEFAULT_DEV_HOSTS } from './dev-pki';
export type { DevPkiPaths, DevPkiOptions } from './dev-pki';
export { certificateInfo, normaliseSerial, parseNodeName, SerialError } from './revocation';
export type { CertificateInfo, NameFields } from './revocation';
export { runCertsCommand, parseRevokeArgs, CERTS_USAGE } from './cli';
export { UsageError } from './cli-args';
export { splitPemCertificates } from './build';
export { identityUri, namesIdentity } from './identity-name';
