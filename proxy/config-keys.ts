/**
 * Every configuration key the proxy understands, in one table. The loader, the CLI flag parser,
 * the environment mapping and the README table are all derived from it, so they cannot drift.
 */

/** How a key's text form (env var, flag, file value) is interpreted. */
export type KeyType = 'string' | 'int' | 'bool' | 'list' | 'hostport' | 'url' | 'enum';

/** One configuration key. */
export interface KeyDef {
  /** camelCase name used in config files. Flag is its kebab-case, env var `OCPP_PROXY_` + UPPER_SNAKE. */
  key: string;
  type: KeyType;
  default: unknown;
  doc: string;
  values?: readonly string[];
  /** Lower bound for ints. */
  min?: number;
  /** Upper bound for ints. */
  max?: number;
  /** Further environment variable names accepted for this key. */
  envAliases?: readonly string[];
}

export const CONFIG_KEYS = [
  { key: 'listen', type: 'hostport', default: '0.0.0.0:8443', doc: 'TLS charger listener (Security Profile 2 and 3).' },
  { key: 'plainListen', type: 'hostport', default: null, doc: 'Plain ws:// charger listener for Profile 1 (off unless set). Only chargers whose minimum profile is 1 are admitted here.' },
  { key: 'adminListen', type: 'hostport', default: '127.0.0.1:9100', doc: 'Admin listener: /metrics, /healthz, /readyz and the admin API. Never the charger port.' },
  { key: 'backend', type: 'url', default: 'ws://127.0.0.1:9000/ocpp', doc: 'Legacy CSMS WebSocket endpoint; the charger identity is appended as the last path segment.' },
  { key: 'pathPrefix', type: 'string', default: '/ocpp/', doc: 'Path chargers connect under; the identity is the percent-decoded segment after it.' },
  { key: 'tlsCert', type: 'list', default: [], doc: 'Server certificate chain file(s) (PEM). Give twice for an RSA and an ECDSA certificate served side by side.' },
  { key: 'tlsKey', type: 'list', default: [], doc: 'Private key file(s) (PEM), in the same order as tlsCert.' },
  { key: 'clientCa', type: 'string', default: null, doc: 'CA bundle (PEM) that charger client certificates (Profile 3) must chain to. Certificates are requested, not required, at the socket.' },
  { key: 'devPki', type: 'bool', default: true, doc: 'When no tlsCert is given, generate (once) a development CA and RSA+ECDSA localhost certificates in dataDir/pki. Not for production.' },
  { key: 'dataDir', type: 'string', default: './data', doc: 'Directory for the embedded store, the generated server secret and the development PKI.' },
  { key: 'subprotocols', type: 'list', default: ['ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1'], doc: 'OCPP-J subprotocols the proxy relays; the CSMS picks among those the charger offers.' },
  { key: 'backendUsername', type: 'string', default: null, doc: 'Basic username for the CSMS (Profile 1 towards the CSMS). Defaults to the charger identity when a password is set.' },
  { key: 'backendPasswordFile', type: 'string', default: null, doc: 'File holding the Basic password the proxy presents to the CSMS (env alternative OCPP_PROXY_BACKEND_PASSWORD).' },
  { key: 'backendCa', type: 'string', default: null, doc: 'For a wss:// backend: CA bundle (PEM) the CSMS certificate must chain to, instead of Node\'s built-in root CAs (a CSMS with a private CA, or its own self-signed certificate pinned). The CSMS name is checked either way. Re-read when the file changes.' },
  { key: 'forwardedHeaders', type: 'bool', default: true, doc: 'Send X-Forwarded-For / X-Forwarded-Proto to the CSMS.' },
  { key: 'backendTimeoutMs', type: 'int', default: 10000, min: 100, doc: 'Time allowed for the CSMS WebSocket handshake before the charger gets 503.' },
  { key: 'maxFrameBytes', type: 'int', default: 262144, min: 1024, doc: 'Largest frame accepted from either side; a bigger one closes the session with 1009.' },
  { key: 'framing', type: 'enum', default: 'builtin', values: ['builtin', 'ws'], doc: 'WebSocket framing for sessions that negotiate no permessage-deflate: builtin = the proxy\'s own RFC 6455 framing (less CPU and memory per frame and session); ws = the ws library on every session, as sessions with permessage-deflate always use.' },
  { key: 'handshakeTimeoutMs', type: 'int', default: 10000, min: 100, doc: 'A TLS or HTTP handshake not finished in this time is cut.' },
  { key: 'pingIntervalMs', type: 'int', default: 30000, min: 0, doc: 'WebSocket ping interval on both legs; a peer that misses a pong is declared dead and both legs close. 0 disables.' },
  { key: 'callTimeoutMs', type: 'int', default: 30000, min: 100, doc: 'How long a call injected by the proxy waits for the charger\'s answer; also how long a CSMS call the charger leaves unanswered holds the proxy\'s own calls back, and how long a charger call the CSMS leaves unanswered keeps its id from being used again.' },
  { key: 'maxHeldFrames', type: 'int', default: 1000, min: 1, doc: 'CSMS frames held back while an injected call is in flight; beyond this the session is closed (1013) rather than buffering without bound.' },
  { key: 'heapCompaction', type: 'bool', default: true, doc: 'Compact the V8 heap (V8 --compact-on-every-full-gc) at most once per `heapCompactionIntervalS`: the first full garbage collection that starts after the interval compacts. Without it, reconnect churn leaves the old generation fragmented and resident memory creeps (README, "Soak").' },
  { key: 'heapCompactionIntervalS', type: 'int', default: 60, min: 0, doc: 'Seconds between two compacting garbage collections; 0 compacts at every full collection, which lengthens each pause of a reconnect storm several-fold.' },
  { key: 'workers', type: 'int', default: 1, min: 1, doc: 'Worker processes sharing the charger listeners on this host (Node cluster). Worker n serves the admin listener on adminListen port + n − 1. Use Redis (or accept per-process lockout counters with the embedded store).' },
  { key: 'maxSessions', type: 'int', default: 50000, min: 1, doc: 'Most live sessions per process; further chargers get 503 (they retry, ideally on another replica).' },
  { key: 'maxPendingUpgrades', type: 'int', default: 2000, min: 1, doc: 'Most upgrades being authenticated or dialling the CSMS at once; beyond it 503 rather than collapse in a reconnect storm.' },
  { key: 'maxConnectionsPerAddress', type: 'int', default: 1000, min: 1, doc: 'Most open TCP connections from one source address (chargers behind one NAT share it: keep it generous); beyond it new connections are closed at once.' },
  { key: 'proxyProtocol', type: 'bool', default: false, doc: 'Expect a PROXY protocol v1/v2 header on the charger listeners (behind a layer-4 load balancer) so logs, limits and lockouts see the real charger address. Only accepted from trustedProxyCidrs; other peers are refused.' },
  { key: 'trustedProxyCidrs', type: 'list', default: [], doc: 'Networks (CIDR or single addresses) of the load balancers allowed to send PROXY protocol headers.' },
  { key: 'proxyProtocolTimeoutMs', type: 'int', default: 5000, min: 100, doc: 'Time a load balancer has to deliver the PROXY header.' },
  { key: 'forwardedClientCertHeader', type: 'string', default: null, doc: 'Behind a TLS-terminating edge: header carrying the charger\'s client certificate (`x-forwarded-client-cert` as Envoy sends it, or RFC 9440 `client-cert`). Honoured only from trustedForwarderCidrs, verified against clientCa; otherwise ignored.' },
  { key: 'trustedForwarderCidrs', type: 'list', default: [], doc: 'Networks of the TLS-terminating fronts whose forwarded client certificates, X-Forwarded-Proto and X-Forwarded-For (read from the right, skipping these networks) are believed; their connections to the plain listener count toward maxConnectionsPerAddress under the charger address they name, not their own.' },
  { key: 'tlsSessionTimeoutS', type: 'int', default: 86400, min: 1, max: 604800, doc: 'How long a TLS session (ticket) stays resumable. After a rollout, chargers whose last full handshake is older than this do a full one again; 24 h by default (Node, nginx and HAProxy default to 5 minutes, which a charger connected for longer never meets), at most 7 days (TLS 1.3).' },
  { key: 'tlsTicketKeyFile', type: 'string', default: null, doc: 'TLS session ticket keys shared by all replicas (48 bytes: raw, hex or base64), so chargers resume sessions on any replica after a rollout. Reloaded when the file changes.' },
  { key: 'httpPassthrough', type: 'bool', default: false, doc: 'Pass non-upgrade HTTP requests on the charger port to the CSMS\'s HTTP origin (otherwise 404), without Authorization and with X-Forwarded-For/-Proto set as for sessions (what clients claim in such headers is dropped). An https:// origin (wss:// backend) must present a certificate `backendCa` trusts.' },
  { key: 'drainGraceMs', type: 'int', default: 10000, min: 0, doc: 'On SIGTERM: stop accepting, then close live sessions with 1001 after this grace.' },
  { key: 'drainJitterMs', type: 'int', default: 5000, min: 0, doc: 'Closes during a drain are spread randomly over this window so chargers do not reconnect in lockstep.' },
  { key: 'redis', type: 'string', default: null, envAliases: ['OCPP_PROXY_REDIS_URL'], doc: 'Credential store in Redis (redis://, rediss://, redis-sentinel://h:p,h:p/master, redis-cluster://h:p,h:p). Unset: the embedded store in dataDir.' },
  { key: 'redisKeyPrefix', type: 'string', default: 'ocpp:', doc: 'Prefix of every Redis key the proxy writes.' },
  { key: 'secretFile', type: 'string', default: null, doc: 'Server secret file (32+ random bytes, hex or base64) keying password hashes and sealing stored secrets. Env alternative OCPP_PROXY_SECRET; otherwise generated once as dataDir/server-secret.' },
  { key: 'adminTokenFile', type: 'string', default: null, doc: 'Bearer token for the admin API. Env alternative OCPP_PROXY_ADMIN_TOKEN; otherwise generated once as dataDir/admin-token.' },
  { key: 'reportOnly', type: 'bool', default: false, doc: 'Migration aid: every gate still decides, logs and counts what it would refuse, but the charger is admitted.' },
  { key: 'autoEnrol', type: 'bool', default: false, doc: 'Admit (and record) an unknown identity that presents a matching factory default password.' },
  { key: 'organization', type: 'string', default: null, doc: 'Expected O in charger client certificates (Profile 3) and CSRs; unchecked when unset.' },
  { key: 'lockoutThreshold', type: 'int', default: 5, min: 1, doc: 'Failed logins of one identity (within failureWindowMs) before it is locked out.' },
  { key: 'addressLockoutThreshold', type: 'int', default: 100, min: 1, doc: 'Failed logins from one source address before that address is locked out (high: chargers share NAT addresses).' },
  { key: 'failureWindowMs', type: 'int', default: 900000, min: 1000, doc: 'Window in which failed logins are counted.' },
  { key: 'lockoutBaseMs', type: 'int', default: 60000, min: 1, doc: 'First lockout duration; doubles with every further lockout up to lockoutMaxMs.' },
  { key: 'lockoutMaxMs', type: 'int', default: 3600000, min: 1, doc: 'Longest lockout.' },
  { key: 'lockoutSparesFamiliarAddress', type: 'bool', default: true, doc: 'An identity locked out after failed logins still gets its password checked from the address its last admitted session came from, so guesses made elsewhere cannot lock the charger itself out.' },
  { key: 'credentialCacheTtlMs', type: 'int', default: 60000, min: 0, doc: 'How long a verified password is remembered in memory, so reconnect storms skip the slow hash. 0 disables.' },
  { key: 'publicUrl', type: 'string', default: null, doc: 'The wss:// URL chargers use to reach the proxy (sent in SetNetworkProfile during a profile upgrade).' },
  { key: 'rotation', type: 'bool', default: true, doc: 'Rotate charger passwords automatically (factory/operator passwords, passwords older than passwordMaxAgeDays, operator requests). Per charger it can also be switched off.' },
  { key: 'passwordMaxAgeDays', type: 'int', default: 365, min: 0, doc: 'Rotate a password older than this many days (0: never by age).' },
  { key: 'rotationGraceMs', type: 'int', default: 86400000, min: 0, doc: 'After a charger answered Accepted to a new password, how long its old password still works until it logs in with the new one. 0 = strict per spec (A01.FR.03).' },
  { key: 'bootWaitMs', type: 'int', default: 5000, min: 0, doc: 'After a charger connects, how long the proxy waits for its BootNotification before sending calls of its own (rotation, profile upgrade, certificate renewal) on the boot state stored from an earlier connection: a charger that rebooted refuses other calls until its BootNotification is answered. Any other call from the charger ends the wait at once.' },
  { key: 'rotationRetryMs', type: 'int', default: 300000, min: 1000, doc: 'First back-off after a rejected or unanswered rotation or profile upgrade; doubles per failure up to 24 h.' },
  { key: 'caDir', type: 'string', default: null, doc: 'CA the proxy signs charger certificates with (ca.crt/ca.key, optional intermediate.crt/.key). Defaults to the development PKI when devPki is in use; without it SignCertificate is answered Rejected.' },
  { key: 'chargerCertDays', type: 'int', default: 365, min: 1, doc: 'Validity of charger certificates the proxy signs.' },
  { key: 'renewBeforeDays', type: 'int', default: 30, min: 0, doc: 'A Profile 3 charger whose certificate expires within this many days is asked to renew (TriggerMessage / ExtendedTriggerMessage).' },
  { key: 'localSecurityEvents', type: 'enum', default: 'auto', values: ['auto', 'always', 'never'], doc: 'Answer SecurityEventNotification (and the 1.6 security-extension notifications) in the proxy instead of forwarding: auto = for OCPP 1.6 chargers (a plain 1.6 CSMS does not know them).' },
  { key: 'checkSerialNumber', type: 'bool', default: true, doc: 'OCPP 2.x B01.FR.11/12: on Profile 3 close the connection when BootNotification serialNumber differs from the certificate CN.' },
  { key: 'guardCsmsCalls', type: 'bool', default: true, doc: 'Answer Rejected, instead of forwarding, CSMS calls that would change what the proxy manages on the charger (1.6 ChangeConfiguration AuthorizationKey, SecurityProfile or CpoName; 2.x SetVariables of SecurityCtrlr BasicAuthPassword, Identity, SecurityProfile or OrganizationName, or OCPPCommCtrlr NetworkConfigurationPriority; SetNetworkProfile): a password the CSMS sets is one the store never saw, and the charger would be locked out.' },
  { key: 'logLevel', type: 'enum', default: 'info', values: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], doc: 'Log level.' },
  { key: 'logFormat', type: 'enum', default: 'json', values: ['json', 'pretty'], doc: 'json: one object per line; pretty: for humans at a terminal.' },
] as const satisfies readonly KeyDef[];

/** Camel-case name → kebab-case flag name (`plainListen` → `plain-listen`). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Camel-case name → environment variable (`plainListen` → `OCPP_PROXY_PLAIN_LISTEN`). */
export function envName(key: string): string {
  return 'OCPP_PROXY_' + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}
