/**
 * Every Prometheus metric of the proxy, in one registry per proxy instance.
 *
 * Names follow Prometheus conventions: one prefix (`ocpp_proxy_`), base units (seconds), `_total` on
 * counters. Node's default process metrics (`process_*`, `nodejs_*`) are added under their standard
 * names so stock dashboards and alerts work. No label carries a charger identity, address or other
 * unbounded value: each metric is reached through a Safe* wrapper that clamps every label value
 * (`metrics-labels.ts`). The table in test/.tmp/METRICS.md documents each metric.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import {
  DIRECTIONS, MESSAGE_TYPES, actionLabel, enumLabel, ocppVersionLabel, operationLabel, profileLabel, reasonLabel, securityEventTypeLabel,
} from './metrics-labels';
import { type LabelClamps, type LabelSet, SafeCounter, SafeGauge, SafeHistogram } from './metrics-safe';
import type { Allocator } from './allocator';
import { RelayTally, checkHistogramShape } from './metrics-tally';

/** Prefix of every metric the proxy defines. */
export const METRIC_PREFIX = 'ocpp_proxy_';

/** Which way a frame travelled. */
export type Direction = (typeof DIRECTIONS)[number];
/** OCPP-J message type (2.1 adds callresulterror and send). */
export type MessageType = (typeof MESSAGE_TYPES)[number];
/** Result of a WebSocket upgrade attempt; report_only = a gate failed but policy only reports. */
export type UpgradeResult = 'admitted' | 'rejected' | 'report_only';
/** How a call the proxy injected towards a charger ended. */
export type InjectedOutcome = 'accepted' | 'rejected' | 'callerror' | 'timeout' | 'closed';
/** Steps and endings of a password rotation or a profile upgrade. */
export type RotationOutcome = 'started' | 'accepted' | 'committed' | 'rejected' | 'failed' | 'timeout' | 'dropped';
/** Fate of a CSR sent by a charger. */
export type CertificateOutcome = 'signed' | 'rejected';
/** What a lockout counts against. */
export type LockoutScope = 'identity' | 'address';

const UPGRADE_RESULTS = ['admitted', 'rejected', 'report_only'] as const;
const INJECTED_OUTCOMES = ['accepted', 'rejected', 'callerror', 'timeout', 'closed'] as const;
const ROTATION_OUTCOMES = ['started', 'accepted', 'committed', 'rejected', 'failed', 'timeout', 'dropped'] as const;
const CERTIFICATE_OUTCOMES = ['signed', 'rejected'] as const;
const LOCKOUT_SCOPES = ['identity', 'address'] as const;
const RELOAD_OUTCOMES = ['ok', 'failed'] as const;

const oneOf = (allowed: readonly string[]) => (v: unknown) => enumLabel(v, allowed);
const ALLOCATORS: readonly Allocator[] = ['jemalloc', 'tcmalloc', 'mimalloc', 'glibc', 'unknown'];
const VERSION_PATTERN = /^[0-9A-Za-z.+_-]{1,40}$/;
const versionLabel = (v: unknown) => (typeof v === 'string' && VERSION_PATTERN.test(v) ? v : 'other');

/** Buckets (seconds) for authentication: HMAC checks take ~10 µs, scrypt and Redis round trips ms. */
export const AUTH_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
/** Buckets (seconds) for the latency the proxy adds to one frame: tens of µs when healthy. */
export const RELAY_BUCKETS = [0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05];
/** Buckets (seconds) for credential store operations (file writes, Redis round trips). */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Options of {@link ProxyMetrics}. */
export interface ProxyMetricsOptions {
  /** Register Node's default process metrics (CPU, memory, event-loop lag, GC). Default true. */
  collectDefault?: boolean;
  /** Version reported by `ocpp_proxy_build_info`. Default "unknown". */
  version?: string;
  /** C allocator reported by `ocpp_proxy_build_info` (see allocator.ts). Default "unknown". */
  allocator?: Allocator;
}

/**
 * The proxy's metrics. Each instance owns a fresh prom-client {@link Registry} (never the global
 * one), so several proxies can run in one process, as the tests do.
 */
export class ProxyMetrics {
  /** The registry holding every metric below (and the default ones when enabled). */
  readonly registry = new Registry();
  /** Content type of {@link metricsText}'s output, for the `/metrics` response header. */
  readonly contentType: string = this.registry.contentType;

  /** Open charger sessions by security profile ("1".."3") and subprotocol (e.g. "ocpp1.6"). */
  readonly sessionsActive = this.gauge<{ profile: string | number; ocpp_version: string }>(
    'sessions_active', 'Open charger sessions.', { profile: profileLabel, ocpp_version: ocppVersionLabel });
  /** Sessions being drained during a graceful shutdown. */
  readonly drainingSessions = new Gauge({
    name: `${METRIC_PREFIX}draining_sessions`, help: 'Sessions being closed by a graceful shutdown.',
    registers: [this.registry],
  });
  /** WebSocket upgrade attempts by result and gate reason (`ok`, `bad_password`, `unknown_identity`...). */
  readonly upgradeAttempts = this.counter<{ result: UpgradeResult; reason: string }>(
    'upgrade_attempts_total', 'WebSocket upgrade attempts by result and reason.',
    { result: oneOf(UPGRADE_RESULTS), reason: reasonLabel });
  /** TLS handshakes that failed, by reason (`no_shared_cipher`, `bad_certificate`, `protocol_version`...). */
  readonly tlsHandshakeFailures = this.counter<{ reason: string }>(
    'tls_handshake_failures_total', 'Failed TLS handshakes by reason.', { reason: reasonLabel });
  /** Reloads of TLS certificates / CA bundles from disk by outcome (ok|failed). */
  readonly tlsReloads = this.counter<{ outcome: 'ok' | 'failed' }>(
    'tls_reloads_total', 'Reloads of TLS certificates and CA bundles from disk.', { outcome: oneOf(RELOAD_OUTCOMES) });
  /** Time to authenticate one upgrade (all gates), by result (`ok` or the rejecting reason). */
  readonly authDuration = this.histogram<{ result: string }>(
    'auth_duration_seconds', 'Time spent authenticating one upgrade.', { result: reasonLabel }, AUTH_BUCKETS);
  /** Every relayed frame is recorded here (cheap, per frame) and reaches the two metrics below at scrape time. */
  readonly relayTally = new RelayTally(RELAY_BUCKETS);
  /** Frames forwarded between charger and CSMS, by direction and OCPP-J message type. */
  readonly framesRelayed = this.counter<{ direction: Direction; message_type: MessageType }>(
    'frames_relayed_total', 'Frames forwarded between charger and CSMS.',
    { direction: oneOf(DIRECTIONS), message_type: oneOf(MESSAGE_TYPES) },
    () => this.relayTally.foldFrames(this.framesRelayed.metric));
  /** Time from receiving a frame on one socket to handing it to the other, by direction. */
  readonly relayLatency = this.histogram<{ direction: Direction }>(
    'relay_latency_seconds', 'Latency the proxy adds to one relayed frame.', { direction: oneOf(DIRECTIONS) },
    RELAY_BUCKETS, () => this.relayTally.foldLatency(this.relayLatency.metric));
  /** Frames the proxy did not forward because they are not valid OCPP-J (answered per OCPP-J where it prescribes). */
  readonly framesRefused = this.counter<{ direction: Direction; problem: string }>(
    'frames_refused_total', 'Frames not forwarded because they were malformed or unsolicited.',
    { direction: oneOf(DIRECTIONS), problem: oneOf(['not_json', 'not_array', 'bad_type', 'bad_id', 'bad_shape', 'unknown_type', 'unsolicited_answer', 'duplicate_id']) });
  /** Connections and upgrades refused for capacity or front reasons. */
  readonly connectionsRefused = this.counter<{ reason: string }>(
    'connections_refused_total', 'Connections or upgrades refused before authentication (capacity limits, PROXY protocol).', { reason: reasonLabel });
  /** Back-end (CSMS) sessions opened successfully, by subprotocol. */
  readonly backendSessionsOpened = this.counter<{ ocpp_version: string }>(
    'backend_sessions_opened_total', 'WebSocket connections opened to the CSMS.', { ocpp_version: ocppVersionLabel });
  /** Failed connects to the CSMS by reason (`refused`, `timeout`, `http_status`, `tls`...). */
  readonly backendConnectFailures = this.counter<{ reason: string }>(
    'backend_connect_failures_total', 'Failed WebSocket connects to the CSMS.', { reason: reasonLabel });
  /** Closed charger sessions by close reason (`charger_closed`, `csms_closed`, `replaced`, `drain`...). */
  readonly sessionsClosed = this.counter<{ close_reason: string }>(
    'sessions_closed_total', 'Closed charger sessions by reason.', { close_reason: reasonLabel });
  /** Calls the proxy injected towards chargers, by action and outcome. */
  readonly injectedCalls = this.counter<{ action: string; outcome: InjectedOutcome }>(
    'injected_calls_total', 'Calls the proxy sent to chargers on its own behalf.',
    { action: actionLabel, outcome: oneOf(INJECTED_OUTCOMES) });
  /** Charger calls the proxy answered itself instead of forwarding them to the CSMS. */
  readonly locallyAnsweredCalls = this.counter<{ action: string }>(
    'locally_answered_calls_total', 'Charger calls answered by the proxy, not the CSMS.', { action: actionLabel });
  /** Password rotation steps and endings. */
  readonly rotations = this.counter<{ outcome: RotationOutcome }>(
    'password_rotations_total', 'Password rotation steps and outcomes.', { outcome: oneOf(ROTATION_OUTCOMES) });
  /** Security profile upgrade steps and endings. */
  readonly profileUpgrades = this.counter<{ outcome: RotationOutcome }>(
    'profile_upgrades_total', 'Security profile upgrade steps and outcomes.', { outcome: oneOf(ROTATION_OUTCOMES) });
  /** Charger CSRs signed or rejected, with a reason (`ok`, `bad_csr`, `identity_mismatch`...). */
  readonly certificates = this.counter<{ outcome: CertificateOutcome; reason: string }>(
    'certificates_total', 'Charger certificate signing requests by outcome.',
    { outcome: oneOf(CERTIFICATE_OUTCOMES), reason: reasonLabel });
  /** Security events reported by chargers, by standard type (see `securityEventTypeLabel`). */
  readonly securityEvents = this.counter<{ type: string }>(
    'security_events_total', 'SecurityEventNotification messages by standard event type.',
    { type: (v) => securityEventTypeLabel(typeof v === 'string' ? v : '') });
  /** Duration of credential store operations by operation (method name). */
  readonly storeOperationDuration = this.histogram<{ operation: string }>(
    'store_operation_duration_seconds', 'Credential store operation latency.', { operation: operationLabel },
    STORE_BUCKETS);
  /** Credential store operations that failed, by operation. */
  readonly storeErrors = this.counter<{ operation: string }>(
    'store_errors_total', 'Credential store operations that failed.', { operation: operationLabel });
  /** Lockouts imposed after repeated failures, by scope (identity|address). */
  readonly lockouts = this.counter<{ scope: LockoutScope }>(
    'lockouts_total', 'Lockouts imposed after repeated authentication failures.', { scope: oneOf(LOCKOUT_SCOPES) });
  /** Always 1; its labels say which build is running, and on which C allocator. */
  readonly buildInfo = this.gauge<{ version: string; node_version: string; allocator: string }>(
    'build_info', 'Build information; the value is always 1.',
    { version: versionLabel, node_version: versionLabel, allocator: oneOf(ALLOCATORS) });

  /** @param opts see {@link ProxyMetricsOptions}. */
  constructor(opts: ProxyMetricsOptions = {}) {
    checkHistogramShape(this.relayLatency.metric, RELAY_BUCKETS);
    if (opts.collectDefault ?? true) collectDefaultMetrics({ register: this.registry });
    this.buildInfo.set({ version: opts.version ?? 'unknown', node_version: process.versions.node, allocator: opts.allocator ?? 'unknown' }, 1);
  }

  /** The Prometheus text exposition of every metric in {@link registry}. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  /** Names of every metric in the registry (ours and the default ones). */
  metricNames(): string[] {
    return this.registry.getMetricsAsArray().map((m) => m.name);
  }

  private counter<V extends LabelSet>(name: string, help: string, clamps: LabelClamps<V>, collect?: () => void): SafeCounter<V> {
    const labelNames = Object.keys(clamps) as Extract<keyof V, string>[];
    return new SafeCounter(new Counter({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry], collect }), clamps);
  }

  private gauge<V extends LabelSet>(name: string, help: string, clamps: LabelClamps<V>): SafeGauge<V> {
    const labelNames = Object.keys(clamps) as Extract<keyof V, string>[];
    return new SafeGauge(new Gauge({ name: METRIC_PREFIX + name, help, labelNames, registers: [this.registry] }), clamps);
  }

  private histogram<V extends LabelSet>(
    name: string, help: string, clamps: LabelClamps<V>, buckets: number[], collect?: () => void,
  ): SafeHistogram<V> {
    const labelNames = Object.keys(clamps) as Extract<keyof V, string>[];
    return new SafeHistogram(
      new Histogram({ name: METRIC_PREFIX + name, help, labelNames, buckets, registers: [this.registry], collect }), clamps);
  }
}
