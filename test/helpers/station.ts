import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RPCClient } from 'ocpp-rpc';

/** A PKCS#10 CSR with a fresh EC P-256 key, made by the real openssl CLI (as EVerest chargers do: CN = serial). */
export function makeCsr(commonName: string, organization: string): { csr: string; key: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'csr-'));
  try {
    const keyPath = path.join(dir, 'key.pem');
    const csr = execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyPath,
      '-subj', `/C=DE/O=${organization}/CN=${commonName}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { csr, key: readFileSync(keyPath, 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
import { sleep } from './net';

/** How a simulated station answers a password change. */
export type PasswordBehaviour = 'apply' | 'reject' | 'notsupported' | 'callerror' | 'never' | 'drop' | 'manual';

/** Options of {@link SimStation}. */
export interface StationOptions {
  identity: string;
  endpoint: string;
  protocol: 'ocpp1.6' | 'ocpp2.0.1' | 'ocpp2.1';
  password: string;
  ca?: Buffer;
  behaviour?: PasswordBehaviour;
  /** Delay before reconnecting after a drop or an applied key. */
  reconnectDelayMs?: number;
  /** Serial number (= CN of its certificate) and organisation (CSR O), for certificate tests. */
  serial?: string;
  /** The serial number its BootNotification carries (default `serial`, else SN-<identity>). */
  bootSerial?: string;
  organization?: string;
  /** Offer permessage-deflate: the session then runs on ws instead of the proxy's own framing. */
  deflate?: boolean;
  /**
   * As libocpp does with 1.6 `ChangeConfiguration SecurityProfile 2` on a ws:// endpoint: keep the
   * host and port, switch to wss:// (its CentralSystemURI has no scheme). Off: it only says Accepted.
   */
  switchesSchemeForProfile2?: boolean;
}

/** A password-change request the station received. */
export interface KeyChange {
  /** The new password as the station will present it in Basic auth (1.6: hex-decoded). */
  password: string;
  /** The raw request payload (to validate against the OCPP schemas). */
  payload: any;
  action: string;
  /** For behaviour 'manual': answer it yourself. */
  answer(status: 'Accepted' | 'Rejected' | 'RebootRequired'): void;
}

/**
 * A charging station that behaves like a real one towards password management: it boots once,
 * answers ChangeConfiguration AuthorizationKey (1.6) / SetVariables BasicAuthPassword (2.x) per its
 * behaviour and, when it applied a new key, answers first, closes, and reconnects with the new key
 * (libocpp does exactly this). It reconnects with back-off after any refused connection, as chargers must.
 */
export class SimStation {
  password: string;
  behaviour: PasswordBehaviour;
  client: any = null;
  booted = false;
  /** HTTP statuses of refused connection attempts, in order. */
  readonly refusals: number[] = [];
  /** Successful connections (each gets a fresh ocpp-rpc client). */
  connections = 0;
  readonly keyChanges: KeyChange[] = [];
  readonly otherCalls: { action: string; params: any }[] = [];
  /** Security profile the station connects with: 3 = client certificate, no password. */
  profile: 2 | 3 = 2;
  /** Client certificate (after CertificateSigned) and the key its CSR was made with. */
  certPem: string | null = null;
  keyPem: string | null = null;
  private pendingKeyPem: string | null = null;
  private stopped = false;
  private connecting: Promise<void> | null = null;

  /** Where it connects: `o.endpoint`, until a profile switch changes the scheme. */
  endpoint: string;

  constructor(private readonly o: StationOptions) {
    this.endpoint = o.endpoint;
    this.password = o.password;
    this.behaviour = o.behaviour ?? 'apply';
  }

  /** Connects (retrying on refusal until `timeoutMs`) and boots on the first connection. */
  async connect(timeoutMs = 10000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      if (this.stopped) throw new Error('station stopped');
      const c = this.makeClient();
      try {
        await c.connect();
        this.client = c;
        this.connections++;
        c.once('close', () => { if (this.client === c) this.client = null; });
        if (!this.booted) {
          const serialNumber = this.o.bootSerial ?? this.o.serial ?? `SN-${this.o.identity}`;
          const boot = this.o.protocol === 'ocpp1.6'
            ? await c.call('BootNotification', { chargePointVendor: 'Sim', chargePointModel: 'S1', chargePointSerialNumber: serialNumber })
            : await c.call('BootNotification', { reason: 'PowerUp', chargingStation: { vendorName: 'Sim', model: 'S1', serialNumber } });
          this.booted = boot.status === 'Accepted' || boot.status === 'Pending';
        }
        return;
      } catch (err: any) {
        // ocpp-rpc puts the refused upgrade's HTTP status in err.code.
        const status = typeof err?.code === 'number' ? err.code : Number(/(\d{3})/.exec(String(err?.message ?? ''))?.[1] ?? 0);
        this.refusals.push(status);
        c.removeAllListeners?.();
        if (Date.now() > end) throw new Error(`station ${this.o.identity} could not connect: ${err?.message}`);
        await sleep(200);
      }
    }
  }

  /** Reconnects in the background (used after applying a key or dropping the link). */
  reconnectSoon(): void {
    if (this.stopped || this.connecting) return;
    this.connecting = (async () => {
      await sleep(this.o.reconnectDelayMs ?? 100);
      try { await this.connect(15000); } catch { /* the test will notice */ }
      this.connecting = null;
    })();
  }

  /** Waits for a background reconnect to finish. */
  async settled(): Promise<void> {
    while (this.connecting) await this.connecting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.settled().catch(() => undefined);
    await this.client?.close({ force: true, awaitPending: false }).catch(() => undefined);
  }

  private makeClient(): any {
    const c: any = new RPCClient({
      endpoint: this.endpoint, identity: this.o.identity, protocols: [this.o.protocol],
      password: this.profile === 3 ? undefined : this.password,
      reconnect: false, pingIntervalMs: 0, callTimeoutMs: 5000,
      wsOpts: {
        perMessageDeflate: this.o.deflate ?? false, // false: the proxy's own framing (see makeCharger)
        ...(this.endpoint.startsWith('wss') ? { ca: this.o.ca, servername: 'localhost', ...(this.profile === 3 ? { cert: this.certPem, key: this.keyPem } : {}) } : {}),
      },
    } as any);
    const onKey = (action: string, payload: any, extract: () => string | null, ok: (s: string) => any) => {
      const pw = extract();
      if (pw === null) return ok('Rejected');
      return new Promise((resolve, reject) => {
        const answer = (status: 'Accepted' | 'Rejected' | 'RebootRequired') => {
          resolve(ok(status));
          if (status !== 'Rejected') {
            // Real stations answer first, then disconnect and come back with the new key.
            this.password = pw;
            setTimeout(() => { c.close({ code: 1000, force: false }).catch(() => undefined); this.reconnectSoon(); }, 50);
          }
        };
        this.keyChanges.push({ password: pw, payload, action, answer });
        switch (this.behaviour) {
          case 'apply': return answer('Accepted');
          case 'reject': return resolve(ok('Rejected'));
          case 'notsupported': return resolve(ok('NotSupported'));
          case 'callerror': return reject(Object.assign(new Error('internal'), { rpcErrorCode: 'InternalError' }));
          case 'drop': c.close({ code: 1006, force: true }).catch(() => undefined); this.reconnectSoon(); return;
          case 'never': case 'manual': return; // no answer (manual: the test answers)
        }
      });
    };
    const switchToProfile3 = () => {
      // As libocpp: answer first, then reconnect with the new profile.
      setTimeout(() => { this.profile = 3; c.close({ code: 1000 }).catch(() => undefined); this.reconnectSoon(); }, 50);
    };
    const requestCertificate = (action: string) => {
      setTimeout(() => {
        const { csr, key } = makeCsr(this.o.serial ?? this.o.identity, this.o.organization ?? 'Test CPO');
        this.pendingKeyPem = key;
        c.call('SignCertificate', action === 'ExtendedTriggerMessage' ? { csr } : { csr, certificateType: 'ChargingStationCertificate' }).catch(() => undefined);
      }, 20);
    };
    c.handle('ExtendedTriggerMessage', ({ params }: any) => {
      this.otherCalls.push({ action: 'ExtendedTriggerMessage', params });
      if (params.requestedMessage === 'SignChargePointCertificate') requestCertificate('ExtendedTriggerMessage');
      return { status: 'Accepted' };
    });
    c.handle('TriggerMessage', ({ params }: any) => {
      this.otherCalls.push({ action: 'TriggerMessage', params });
      if (params.requestedMessage === 'SignChargingStationCertificate') requestCertificate('TriggerMessage');
      return { status: 'Accepted' };
    });
    c.handle('CertificateSigned', ({ params }: any) => {
      this.otherCalls.push({ action: 'CertificateSigned', params });
      if (!this.pendingKeyPem) return { status: 'Rejected' };
      this.certPem = params.certificateChain;
      this.keyPem = this.pendingKeyPem;
      return { status: 'Accepted' };
    });
    c.handle('SetNetworkProfile', ({ params }: any) => {
      this.otherCalls.push({ action: 'SetNetworkProfile', params });
      return { status: params.connectionData?.securityProfile === 3 && !this.certPem ? 'Rejected' : 'Accepted' };
    });
    c.handle('GetVariables', ({ params }: any) => ({
      getVariableResult: (params.getVariableData ?? []).map((d: any) => ({
        attributeStatus: 'Accepted', component: d.component, variable: d.variable,
        ...(d.variable?.name === 'NetworkConfigurationPriority' ? { attributeValue: '0' } : {}),
      })),
    }));
    c.handle('Reset', ({ params }: any) => {
      this.otherCalls.push({ action: 'Reset', params });
      const upgraded = this.otherCalls.some((x) => x.action === 'SetNetworkProfile' && x.params.connectionData?.securityProfile === 3);
      if (upgraded && this.certPem) switchToProfile3();
      return { status: 'Accepted' };
    });
    c.handle('ChangeConfiguration', ({ params }: any) => {
      if (params.key === 'SecurityProfile') {
        this.otherCalls.push({ action: 'ChangeConfiguration', params });
        if (params.value === '3' && !this.certPem) return { status: 'Rejected' }; // 1.6 A05.FR.04
        if (params.value === '3') switchToProfile3();
        if (params.value === '2' && this.o.switchesSchemeForProfile2 && this.endpoint.startsWith('ws://')) {
          setTimeout(() => { this.endpoint = this.endpoint.replace(/^ws:/, 'wss:'); c.close({ code: 1000 }).catch(() => undefined); this.reconnectSoon(); }, 50);
        }
        return { status: 'Accepted' };
      }
      if (params.key !== 'AuthorizationKey') { this.otherCalls.push({ action: 'ChangeConfiguration', params }); return { status: 'Accepted' }; }
      return onKey('ChangeConfiguration', params, () => (/^[0-9a-fA-F]{2,40}$/.test(params.value) ? Buffer.from(params.value, 'hex').toString('latin1') : null), (status) => ({ status }));
    });
    c.handle('SetVariables', ({ params }: any) => {
      const d = params.setVariableData?.[0];
      if (d?.component?.name !== 'SecurityCtrlr' || d?.variable?.name !== 'BasicAuthPassword') {
        this.otherCalls.push({ action: 'SetVariables', params });
        return { setVariableResult: (params.setVariableData ?? []).map((x: any) => ({ attributeStatus: 'Accepted', component: x.component, variable: x.variable })) };
      }
      return onKey('SetVariables', params, () => String(d.attributeValue), (status) => ({ setVariableResult: [{ attributeStatus: status === 'NotSupported' ? 'NotSupportedAttributeType' : status, component: d.component, variable: d.variable }] }));
    });
    (c.handle as any)(({ method, params }: any) => { this.otherCalls.push({ action: method, params }); return {}; });
    return c;
  }
}
