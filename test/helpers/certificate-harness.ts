/**
 * Shared set-up of the certificate e2e tests (not a test file itself): a real proxy (ProxyServer on
 * real TLS with the shared test PKI) in front of a legacy CSMS stand-in, an EmbeddedStore in a temp
 * dir, strict ocpp-rpc chargers (they validate every payload against the official schemas), CSRs
 * from the openssl CLI, and a test-only gate that sets the admission facts from the real TLS peer
 * certificate, as the Profile-3 gates will once they are wired.
 */
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import path from 'node:path';
import { createValidator, RPCClient } from 'ocpp-rpc';
import { namesIdentity, normaliseSerial } from '../../certs';
import { structuralGates } from '../../policies/gates';
import type { AdmissionFacts } from '../../policies/gates/facts';
import type { Gate } from '../../policies/gates/types';
import type { InterceptorFactory } from '../../policies/interceptors/types';
import { loadConfig } from '../../proxy/config';
import { createLogger } from '../../proxy/log';
import { ProxyServer } from '../../proxy/server';
import { EmbeddedStore } from '../../proxy/store/embedded';
import type { NewChargerRecord } from '../../proxy/store/types';
import { startLegacyCsms, type LegacyCsms } from './csms';
import { makeTestPki, runOpenssl, type TestPki } from './pki';
import { logCapture, TEST_PKI_DIR } from './proxy';

/** What a test needs from its tap object. */
interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A running proxy + CSMS + store for one test file. */
export interface CertRig {
  pki: TestPki;
  store: EmbeddedStore;
  csms: LegacyCsms;
  server: ProxyServer;
  tlsUrl: string;
  caPem: Buffer;
  logs: Record<string, unknown>[];
  dir: string;
  /** Adds a charger record (active, min profile 2) with the given certificate binding. */
  addCharger(identity: string, extra?: Partial<NewChargerRecord>): Promise<void>;
  /** Frames with these actions the CSMS received or sent for `identity` (should be none). */
  csmsSaw(identity: string, actions: string[]): string[];
}

/**
 * Test-only gate: the stored record and, when the charger presented an authorised client
 * certificate, Profile 3 and its facts (serial, CN, O, expiry).
 */
export function testFactsGate(store: EmbeddedStore): Gate {
  return {
    name: 'test-facts',
    async check(ctx) {
      const charger = await store.getCharger(ctx.identity);
      if (!charger) return undefined;
      const cert = ctx.peerCertificate && ctx.peerAuthorized ? ctx.peerCertificate : null;
      const facts: AdmissionFacts = { charger, profile: cert ? 3 : 2 };
      if (cert) {
        facts.certificate = {
          serialHex: normaliseSerial(cert.serialNumber),
          commonName: (cert.subject.CN as string | undefined) ?? null,
          organization: (cert.subject.O as string | undefined) ?? null,
          notAfter: Date.parse(cert.valid_to),
          issuedToThisCharger: namesIdentity(cert.subjectaltname, ctx.identity) === true,
        };
      }
      Object.assign(ctx.facts, facts);
      return undefined;
    },
  };
}

/** Starts the rig; `interceptors` receives the opened store. Everything is stopped on teardown. */
export async function startCertRig(t: Teardown, interceptors: (store: EmbeddedStore) => InterceptorFactory[]): Promise<CertRig> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ocpp-cert-e2e-'));
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }));
  const pki = await makeTestPki(TEST_PKI_DIR);
  const store = await EmbeddedStore.open({ dataDir: path.join(dir, 'store') });
  t.teardown(() => store.close());
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const { logs, sink } = logCapture();
  const config = loadConfig({
    env: {},
    flags: {
      listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', dataDir: path.join(dir, 'data'), backend: csms.url,
      tlsCert: [path.join(TEST_PKI_DIR, 'server-rsa.crt'), path.join(TEST_PKI_DIR, 'server-ec.crt')],
      tlsKey: [path.join(TEST_PKI_DIR, 'server-rsa.key'), path.join(TEST_PKI_DIR, 'server-ec.key')],
      clientCa: path.join(TEST_PKI_DIR, 'ca.crt'), pingIntervalMs: '0', drainGraceMs: '0', drainJitterMs: '0', callTimeoutMs: '3000',
    },
  });
  const server = new ProxyServer(config, {
    log: createLogger({ level: 'debug', destination: sink }),
    tls: { certs: config.tlsCert, keys: config.tlsKey, clientCa: config.clientCa },
    gates: [...structuralGates(config), testFactsGate(store)],
    interceptors: interceptors(store),
  });
  const { tls } = await server.start();
  t.teardown(() => server.stop());
  return {
    pki, store, csms, server, logs, dir,
    tlsUrl: `wss://127.0.0.1:${tls.port}/ocpp`,
    caPem: readFileSync(path.join(TEST_PKI_DIR, 'ca.crt')),
    async addCharger(identity, extra = {}) {
      await store.putCharger({ identity, minProfile: 2, status: 'active', ...extra });
    },
    csmsSaw(identity, actions) {
      return csms.frames.filter((f) => f.identity === identity && actions.some((a) => f.raw.includes(`"${a}"`))).map((f) => f.raw);
    },
  };
}

/**
 * A strict ocpp-rpc charger (validates all payloads, both ways), optionally with a client certificate.
 * On 2.1 strict mode is off: ocpp-rpc looks up `urn:X.req` but its 2.1 schemas are named
 * `urn:XRequest`, so tests check 2.1 payloads with {@link schemaErrors} instead.
 */
export function strictCharger(rig: CertRig, identity: string, protocol: string, client?: { certPem: string; keyPem: string }): any {
  return new RPCClient({
    endpoint: rig.tlsUrl,
    identity,
    protocols: [protocol],
    strictMode: protocol !== 'ocpp2.1',
    reconnect: false,
    pingIntervalMs: 0,
    callTimeoutMs: 5000,
    wsOpts: { ca: rig.caPem, servername: 'localhost', ...(client ? { cert: client.certPem, key: client.keyPem } : {}) },
  } as any);
}

/** Key of a CSR made by the openssl CLI. */
export type CsrKey = 'ec-p256' | 'rsa-2048' | 'rsa-1024';

/** Makes a PEM CSR with `openssl req` for the given subject; the private key stays in `dir`. */
export function opensslCsr(dir: string, subject: { CN: string; O?: string; C?: string }, key: CsrKey = 'ec-p256'): string {
  return opensslKeyAndCsr(dir, subject, key).csr;
}

/** A CSR and its private key (PEM), as a charger that then logs in with the signed certificate holds them. */
export function opensslKeyAndCsr(dir: string, subject: { CN: string; O?: string; C?: string }, key: CsrKey = 'ec-p256'): { csr: string; keyPem: string } {
  const base = path.join(dir, `csr-${Math.random().toString(36).slice(2, 10)}`);
  const newkey = key === 'ec-p256' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'] : ['-newkey', key === 'rsa-2048' ? 'rsa:2048' : 'rsa:1024'];
  const subj = `/C=${subject.C ?? 'DE'}${subject.O ? `/O=${subject.O}` : ''}/CN=${subject.CN}`;
  const r = runOpenssl(['req', '-new', ...newkey, '-nodes', '-keyout', `${base}.key`, '-subj', subj, '-out', `${base}.csr`]);
  if (r.code !== 0) throw new Error(`openssl req failed: ${r.stderr}`);
  return { csr: readFileSync(`${base}.csr`, 'utf8'), keyPem: readFileSync(`${base}.key`, 'utf8') };
}

/** The same CSR with one bit of its signature flipped (still parses; proof of possession fails). */
export function breakSignature(csrPem: string): string {
  const der = Buffer.from(csrPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  der[der.length - 5] ^= 0x01;
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

/** Writes `pem` to a temp file and runs `openssl verify -CAfile <ca>` on it; returns the exit code and output. */
export async function opensslVerify(dir: string, chainPem: string, caFile: string): Promise<{ code: number; out: string }> {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  const leaf = path.join(dir, 'leaf.pem');
  const rest = path.join(dir, 'untrusted.pem');
  await fs.writeFile(leaf, blocks[0] ?? '');
  const args = ['verify', '-CAfile', caFile];
  if (blocks.length > 1) {
    await fs.writeFile(rest, blocks.slice(1).join(''));
    args.push('-untrusted', rest);
  }
  const r = runOpenssl([...args, leaf]);
  return { code: r.code, out: r.stdout + r.stderr };
}

const validators: Record<string, any> = {
  'ocpp1.6': createValidator('ocpp1.6', require('ocpp-rpc/lib/schemas/ocpp1_6.json')),
  'ocpp2.0.1': createValidator('ocpp2.0.1', require('ocpp-rpc/lib/schemas/ocpp2_0_1.json')),
  'ocpp2.1': createValidator('ocpp2.1', require('ocpp-rpc/lib/schemas/ocpp2_1.json')),
};

/** Validates a payload against the official schema of `protocol`; returns the error text, or '' when valid. */
export function schemaErrors(protocol: string, action: string, kind: 'req' | 'conf', payload: unknown): string {
  const id = protocol === 'ocpp2.1' ? `urn:${action}${kind === 'req' ? 'Request' : 'Response'}` : `urn:${action}.${kind}`;
  try {
    validators[protocol].validate(id, payload);
    return '';
  } catch (err) {
    return String((err as Error).message);
  }
}
