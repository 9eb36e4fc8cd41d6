/**
 * The Helm chart rendered by a real helm 3.17 for both modes and a matrix of values: lint passes,
 * every object validates against the Kubernetes API schemas, and the pods are shaped as promised.
 */
import t from 'tap';
import { parse as parseYaml } from 'yaml';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_KEYS, type KeyDef } from '../../proxy/config-keys';
import { loadConfig } from '../../proxy/config';
import { chartDir, K8sObject, lintChart, renderChart, validateManifest } from '../helpers/helm';

interface Container {
  name: string;
  restartPolicy?: string;
  ports?: Array<{ name: string; containerPort: number }>;
  securityContext?: Record<string, unknown> & { capabilities?: { drop?: string[] } };
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  lifecycle?: { preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } } };
  env?: Array<{ name: string }>;
}
interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: Record<string, unknown>;
  terminationGracePeriodSeconds?: number;
  volumes: Array<{ name: string; persistentVolumeClaim?: object; emptyDir?: object }>;
}

const tls = { rsa: { secretName: 'proxy-rsa' }, ecdsa: { secretName: 'proxy-ecdsa' } };
const gateway = { mode: 'gateway', gateway: { csms: { service: 'legacy-csms' } }, tls };
const csmsContainer = { name: 'csms', image: 'example/legacy-csms:1.0', ports: [{ name: 'ocpp', containerPort: 9000 }] };
const sidecar = { mode: 'sidecar', sidecar: { csms: { port: 9000, path: '/ocpp', containers: [csmsContainer] } }, tls };

/** Values sets rendered, linted and schema-validated; each name says what it exercises. */
const matrix: Record<string, object> = {
  'gateway, defaults (embedded store on a PVC)': gateway,
  'gateway, redis sentinel, HA, LoadBalancer, monitoring': {
    ...gateway,
    replicas: 3,
    redis: { url: 'redis-sentinel://s1:26379,s2:26379/mymaster' },
    autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 12, targetMemoryUtilizationPercentage: 80 },
    podDisruptionBudget: { enabled: true, maxUnavailable: 1 },
    networkPolicy: { enabled: true, adminFrom: [{ namespaceSelector: { matchLabels: { name: 'monitoring' } } }] },
    metrics: { serviceMonitor: { enabled: true, labels: { release: 'kube-prometheus' } } },
    service: { type: 'LoadBalancer', annotations: { 'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb' } },
    plain: { enabled: true },
    clientCa: { secretName: 'charger-ca' },
    backendAuth: { username: 'proxy', passwordSecret: { name: 'csms-basic', key: 'password' } },
    config: { publicUrl: 'wss://ocpp.example.com/ocpp/', proxyProtocol: true, trustedProxyCidrs: ['10.0.0.0/8'] },
  },
  'gateway, cert-manager, redis URL from a Secret, PodMonitor': {
    mode: 'gateway',
    gateway: { csms: { service: 'legacy-csms', namespace: 'csms', port: 8080, path: '/steve/websocket/CentralSystemService' } },
    certManager: { enabled: true, issuerRef: { name: 'ocpp-ca' }, dnsNames: ['ocpp.example.com'] },
    redis: { existingSecret: { name: 'redis-url' } },
    replicas: 2,
    metrics: { podMonitor: { enabled: true } },
    tlsTicketKeys: { existingSecret: 'ticket-keys' },
    serverSecret: { existingSecret: 'proxy-server-secret' },
    adminToken: { existingSecret: 'proxy-admin-token' },
  },
  'gateway, redis cluster, explicit backend URL, longer grace': {
    ...gateway,
    gateway: { csms: { url: 'wss://csms.internal:443/ocpp' } },
    redis: { url: 'redis-cluster://r1:6379,r2:6379' },
    terminationGracePeriodSeconds: 120,
    service: { type: 'NodePort' },
    clientCa: { configMapName: 'charger-ca-bundle', key: 'bundle.pem' },
    backendCa: { secretName: 'csms-ca' },
  },
  'gateway, signing CA and proxy tunables': {
    ...gateway,
    redis: { url: 'redis://redis:6379' },
    signingCa: { secretName: 'charger-signing-ca' },
    config: { maxSessions: 9000, rotation: false, rotationGraceMs: 0, lockoutThreshold: 8, autoEnrol: true, localSecurityEvents: 'never', heapCompaction: false },
  },
  'sidecar, chart renders the CSMS pod': sidecar,
  'sidecar, native sidecar (init container)': { ...sidecar, sidecar: { ...sidecar.sidecar, native: true } },
  'sidecar, a CSMS container with its own preStop, more ingress': {
    ...sidecar,
    sidecar: { csms: { ...sidecar.sidecar.csms, containers: [csmsContainer, { name: 'ui', image: 'example/csms-ui:1.0', lifecycle: { preStop: { exec: { command: ['/bin/stop-ui'] } } } }] } },
    networkPolicy: { enabled: true, extraIngress: [{ ports: [{ port: 3000, protocol: 'TCP' }] }] },
  },
  'sidecar, emptyDir store, exec preStop': {
    ...sidecar,
    persistence: { enabled: false },
    preStopMode: 'exec',
    tlsTicketKeys: { enabled: false },
    tls: { ecdsa: { secretName: 'proxy-ecdsa' } },
  },
};

const rendered = new Map<string, K8sObject[]>();

function find(objects: K8sObject[], kind: string, nameSuffix = ''): K8sObject[] {
  return objects.filter((o) => o.kind === kind && o.metadata.name.endsWith(nameSuffix));
}

function podSpec(objects: K8sObject[]): PodSpec {
  const deployments = find(objects, 'Deployment');
  if (deployments.length !== 1) throw new Error(`expected one Deployment, got ${deployments.length}`);
  return (deployments[0].spec as { template: { spec: PodSpec } }).template.spec;
}

function proxyContainer(spec: PodSpec): Container {
  const all = [...(spec.initContainers ?? []), ...spec.containers];
  const proxy = all.find((c) => c.name === 'ocpp-security-proxy');
  if (!proxy) throw new Error('no ocpp-security-proxy container');
  return proxy;
}

/** A Secret volume of the proxy's pod: the Secret it holds and where the proxy container mounts it. */
function secretVolume(objects: K8sObject[], volumeName: string): { secretName: string | undefined; mount: { mountPath: string; readOnly?: boolean } | undefined } {
  const spec = podSpec(objects);
  const volume = spec.volumes.find((v) => v.name === volumeName) as { secret?: { secretName: string } } | undefined;
  const mounts = (proxyContainer(spec) as Container & { volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }> }).volumeMounts ?? [];
  return { secretName: volume?.secret?.secretName, mount: mounts.find((m) => m.name === volumeName) };
}

function proxyConfig(objects: K8sObject[]): Record<string, unknown> {
  const cm = find(objects, 'ConfigMap', '-config')[0];
  return parseYaml((cm.data as Record<string, string>)['config.yaml']) as Record<string, unknown>;
}

t.before(async () => {
  await Promise.all(
    Object.entries(matrix).map(async ([name, values]) => {
      rendered.set(name, await renderChart(values));
    }),
  );
});

for (const [name, values] of Object.entries(matrix)) {
  t.test(name, async (t) => {
    const lint = await lintChart(values);
    t.match(lint, /1 chart\(s\) linted, 0 chart\(s\) failed/, 'helm lint --strict passes');

    const objects = rendered.get(name)!;
    t.ok(objects.length >= 5, 'renders the full set of objects');
    for (const obj of objects) {
      t.doesNotThrow(() => validateManifest(obj), `${obj.kind}/${obj.metadata.name} matches its API schema`);
    }

    const spec = podSpec(objects);
    const proxy = proxyContainer(spec);
    t.match(spec.securityContext, { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } }, 'pod security context');
    t.match(proxy.securityContext, {
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    }, 'container security context');
    t.same(proxy.livenessProbe?.httpGet, { path: '/healthz', port: 'admin' }, 'liveness probe on /healthz');
    t.same(proxy.readinessProbe?.httpGet, { path: '/readyz', port: 'admin' }, 'readiness probe on /readyz');
    t.same(proxy.ports?.find((p) => p.name === 'ocpp-tls')?.containerPort, 8443, 'TLS port 8443 named ocpp-tls');
    t.same(proxy.ports?.find((p) => p.name === 'admin')?.containerPort, 9100, 'admin port 9100');

    const config = proxyConfig(objects);
    t.equal(config.devPki, false, 'devPki is always false');
    t.equal(config.adminListen, '0.0.0.0:9100', 'admin listener reachable by probes');
    const drainSeconds = ((config.drainGraceMs as number) + (config.drainJitterMs as number)) / 1000;
    const preStop = proxy.lifecycle?.preStop;
    const preStopSeconds = preStop?.sleep?.seconds ?? Number(/(\d+)\)$/.exec(preStop?.exec?.command.at(-1) ?? '')?.[1] ?? 0) / 1000;
    t.ok(preStopSeconds > 0, 'preStop hook waits for endpoints to drop the pod');
    t.ok(spec.terminationGracePeriodSeconds! >= preStopSeconds + drainSeconds, 'grace period covers preStop and drain');
  });
}

t.test('gateway mode: one proxy Deployment in front of the CSMS Service', async (t) => {
  const objects = rendered.get('gateway, defaults (embedded store on a PVC)')!;
  const spec = podSpec(objects);
  t.same(spec.containers.map((c) => c.name), ['ocpp-security-proxy'], 'only the proxy runs in the pod');
  t.equal(proxyConfig(objects).backend, 'ws://legacy-csms.ocpp.svc.cluster.local:9000/ocpp', 'backend is the CSMS Service');
  t.equal(find(objects, 'PersistentVolumeClaim').length, 1, 'embedded store on a PVC');
  t.match(find(objects, 'Deployment')[0].spec, { replicas: 1, strategy: { type: 'Recreate' } }, 'single writer, Recreate');
  t.equal(find(objects, 'ServiceMonitor').length, 0, 'no ServiceMonitor unless asked');
  t.equal(find(objects, 'PodMonitor').length, 0, 'no PodMonitor unless asked');
  const podAnnotations = (find(objects, 'Deployment')[0].spec as { template: { metadata: { annotations: Record<string, string> } } })
    .template.metadata.annotations;
  t.equal(podAnnotations['prometheus.io/scrape'], 'true', 'plain scrape annotations otherwise');
  const tlsPaths = proxyConfig(objects);
  t.same(tlsPaths.tlsCert, ['/etc/ocpp-proxy/tls/rsa/tls.crt', '/etc/ocpp-proxy/tls/ecdsa/tls.crt'], 'RSA and ECDSA certificates');
  const secrets = find(objects, 'Secret').map((s) => s.metadata.annotations?.['helm.sh/resource-policy']);
  const ticket = find(objects, 'Secret', '-tls-ticket')[0].data as Record<string, string>;
  t.equal(Buffer.from(ticket['ticket.key'], 'base64').length, 48, 'TLS ticket keys are 48 random bytes');
  t.same(secrets, ['keep', 'keep', 'keep'], 'generated server secret, admin token and ticket keys are kept');
});

t.test('gateway mode with Redis: HA objects and the monitoring switch', async (t) => {
  const objects = rendered.get('gateway, redis sentinel, HA, LoadBalancer, monitoring')!;
  const config = proxyConfig(objects);
  t.equal(config.redis, 'redis-sentinel://s1:26379,s2:26379/mymaster', 'sentinel URL passes through');
  t.equal(config.plainListen, '0.0.0.0:8080', 'Profile 1 plain listener');
  t.equal(config.clientCa, '/etc/ocpp-proxy/client-ca/ca.crt', 'client CA bundle path');
  t.equal(config.backendPasswordFile, '/etc/ocpp-proxy/secrets/backend/password', 'CSMS Basic auth password file');
  t.equal(find(objects, 'PersistentVolumeClaim').length, 0, 'no PVC with Redis');
  t.notOk('replicas' in (find(objects, 'Deployment')[0].spec as object), 'the HPA owns the replica count');
  t.equal(find(objects, 'HorizontalPodAutoscaler').length, 1, 'HPA rendered');
  t.equal(find(objects, 'PodDisruptionBudget').length, 1, 'PDB rendered');
  t.equal(find(objects, 'NetworkPolicy').length, 1, 'NetworkPolicy rendered');
  const monitors = find(objects, 'ServiceMonitor');
  t.equal(monitors.length, 1, 'ServiceMonitor when asked');
  t.equal(monitors[0].metadata.labels?.release, 'kube-prometheus', 'ServiceMonitor carries the selector label');
  const podAnnotations = (find(objects, 'Deployment')[0].spec as { template: { metadata: { annotations: Record<string, string> } } })
    .template.metadata.annotations;
  t.notOk(podAnnotations['prometheus.io/scrape'], 'no scrape annotations next to a ServiceMonitor');
  const service = find(objects, 'Service').find((s) => !s.metadata.name.endsWith('-admin'))!;
  t.match(service.spec, { type: 'LoadBalancer', externalTrafficPolicy: 'Local' }, 'client addresses preserved');
  const ports = (service.spec as { ports: Array<{ name: string }> }).ports.map((p) => p.name);
  t.same(ports, ['ocpp-tls', 'ocpp-plain'], 'the charger Service does not expose the admin port');
});

t.test('gateway mode with cert-manager and a Redis URL Secret', async (t) => {
  const objects = rendered.get('gateway, cert-manager, redis URL from a Secret, PodMonitor')!;
  const certs = find(objects, 'Certificate');
  t.same(certs.map((c) => (c.spec as { privateKey: { algorithm: string } }).privateKey.algorithm), ['RSA', 'ECDSA'], 'two Certificates');
  t.equal(proxyConfig(objects).backend, 'ws://legacy-csms.csms.svc.cluster.local:8080/steve/websocket/CentralSystemService', 'backend in another namespace');
  t.notOk('redis' in proxyConfig(objects), 'the Redis URL stays out of the ConfigMap');
  const proxy = proxyContainer(podSpec(objects));
  t.ok(proxy.env?.some((e) => e.name === 'OCPP_PROXY_REDIS'), 'Redis URL comes from the Secret via env');
  t.equal(find(objects, 'Secret').length, 0, 'no generated Secrets when existing ones are named');
  t.equal(find(objects, 'PodMonitor').length, 1, 'PodMonitor when asked');
  t.equal(find(objects, 'ServiceMonitor').length, 0, 'no ServiceMonitor');
});

t.test('sidecar mode: one pod with the CSMS and the proxy on 127.0.0.1', async (t) => {
  const objects = rendered.get('sidecar, chart renders the CSMS pod')!;
  const spec = podSpec(objects);
  t.same(spec.containers.map((c) => c.name).sort(), ['csms', 'ocpp-security-proxy'], 'both containers in one pod');
  t.equal(proxyConfig(objects).backend, 'ws://127.0.0.1:9000/ocpp', 'backend on loopback');
  t.notOk(spec.initContainers, 'no init containers without native sidecars');
  const service = find(objects, 'Service').find((s) => !s.metadata.name.endsWith('-admin'))!;
  t.same((service.spec as { ports: Array<{ targetPort: string }> }).ports.map((p) => p.targetPort), ['ocpp-tls'], 'chargers reach the proxy, not the CSMS');
});

t.test('sidecar mode: the CSMS stays up while the proxy drains, then has 30 s of its own', async (t) => {
  const spec = podSpec(rendered.get('sidecar, chart renders the CSMS pod')!);
  const csms = spec.containers.find((c) => c.name === 'csms')!;
  const proxyPreStop = proxyContainer(spec).lifecycle!.preStop!.sleep!.seconds;
  const config = proxyConfig(rendered.get('sidecar, chart renders the CSMS pod')!);
  const drain = proxyPreStop + ((config.drainGraceMs as number) + (config.drainJitterMs as number)) / 1000;
  t.same(csms.lifecycle?.preStop, { sleep: { seconds: drain } }, 'the CSMS gets its SIGTERM only once the proxy has drained');
  t.equal(spec.terminationGracePeriodSeconds, drain + 30, 'and 30 s more to shut down');

  const withOwn = podSpec(rendered.get('sidecar, a CSMS container with its own preStop, more ingress')!);
  t.same(withOwn.containers.find((c) => c.name === 'ui')?.lifecycle?.preStop, { exec: { command: ['/bin/stop-ui'] } }, 'a preStop of the operator\'s own is kept');
  t.same(withOwn.containers.find((c) => c.name === 'csms')?.lifecycle?.preStop, { sleep: { seconds: drain } });
  const policy = find(rendered.get('sidecar, a CSMS container with its own preStop, more ingress')!, 'NetworkPolicy')[0]!;
  t.same((policy.spec as { ingress: object[] }).ingress.at(-1), { ports: [{ port: 3000, protocol: 'TCP' }] }, 'extraIngress opens the CSMS\'s other ports');

  const native = podSpec(rendered.get('sidecar, native sidecar (init container)')!);
  t.notOk(native.containers.find((c) => c.name === 'csms')?.lifecycle, 'native sidecars: no hold (Kubernetes stops the CSMS first anyway)');
  const exec = podSpec(rendered.get('sidecar, emptyDir store, exec preStop')!);
  t.notOk(exec.containers.find((c) => c.name === 'csms')?.lifecycle, 'exec preStop mode: no hold (the CSMS image may have no sleep)');
});

t.test('a rollout waits for each new pod to outlast a drain; the session cap fits the memory limit', async (t) => {
  const objects = rendered.get('gateway, defaults (embedded store on a PVC)')!;
  const deployment = find(objects, 'Deployment')[0]!;
  const config = proxyConfig(objects);
  const proxy = proxyContainer(podSpec(objects));
  const drain = proxy.lifecycle!.preStop!.sleep!.seconds + ((config.drainGraceMs as number) + (config.drainJitterMs as number)) / 1000;
  t.equal((deployment.spec as { minReadySeconds: number }).minReadySeconds, drain, 'minReadySeconds is the drain\'s length');
  const long = find(await renderChart({ ...gateway, config: { drainJitterMs: 600_000 } }), 'Deployment')[0]!.spec as { minReadySeconds: number; progressDeadlineSeconds: number };
  t.ok(long.progressDeadlineSeconds > long.minReadySeconds, `a long drain (minReadySeconds ${long.minReadySeconds}) gets a progress deadline above it (${long.progressDeadlineSeconds}), which Kubernetes requires`);
  t.equal(config.maxSessions, 10000, 'maxSessions set for the default 512 MiB limit');
  const limit = (proxy as Container & { resources: { limits: { memory: string } } }).resources.limits.memory;
  t.equal(limit, '512Mi');
  // README, "Sizing a replica": about 70 MiB plus 34 KiB per session right after a storm.
  t.ok(70 * 1024 + 34 * (config.maxSessions as number) <= 512 * 1024, 'the limit holds maxSessions sessions right after a storm');
});

t.test('values set to null render as if unset; a CSMS password from extraEnv goes with backendAuth.username', async (t) => {
  for (const values of [{ redis: { url: null } }, { gateway: { csms: { service: 'legacy-csms', url: null } } }, { podLabels: null }, { extraEnv: null }]) {
    const objects = await renderChart({ ...gateway, ...values });
    t.equal(find(objects, 'Deployment').length, 1, JSON.stringify(values));
  }
  const objects = await renderChart({ ...gateway, backendAuth: { username: 'proxy' }, extraEnv: [{ name: 'OCPP_PROXY_BACKEND_PASSWORD', valueFrom: { secretKeyRef: { name: 'csms-basic', key: 'password' } } }] });
  t.equal(proxyConfig(objects).backendUsername, 'proxy');
  t.same(proxyContainer(podSpec(objects)).env?.map((e) => e.name), ['OCPP_PROXY_BACKEND_PASSWORD']);
});

t.test('sidecar mode with native sidecars', async (t) => {
  const spec = podSpec(rendered.get('sidecar, native sidecar (init container)')!);
  t.same(spec.containers.map((c) => c.name), ['csms'], 'the CSMS is the only regular container');
  t.equal(spec.initContainers?.length, 1, 'the proxy is an init container');
  t.equal(spec.initContainers?.[0].restartPolicy, 'Always', 'with restartPolicy Always');
});

t.test('sidecar mode without persistence and with an exec preStop', async (t) => {
  const objects = rendered.get('sidecar, emptyDir store, exec preStop')!;
  const spec = podSpec(objects);
  t.ok(spec.volumes.find((v) => v.name === 'ocpp-proxy-data')?.emptyDir, 'dataDir on emptyDir');
  t.equal(find(objects, 'PersistentVolumeClaim').length, 0, 'no PVC');
  t.match(proxyContainer(spec).lifecycle?.preStop?.exec?.command, ['/nodejs/bin/node', '-e', /setTimeout/], 'exec preStop uses node');
  t.same(proxyConfig(objects).tlsCert, ['/etc/ocpp-proxy/tls/ecdsa/tls.crt'], 'ECDSA only');
  t.notOk('tlsTicketKeyFile' in proxyConfig(objects), 'ticket keys off');
});

t.test('every proxy setting is either a chart value or one of config\'s keys, typed as the proxy reads it', async (t) => {
  const schema = JSON.parse(readFileSync(path.join(chartDir, 'values.schema.json'), 'utf8'));
  const configProps = schema.properties.config.properties as Record<string, { type: string | string[]; enum?: unknown[]; minimum?: number }>;
  const tpl = readFileSync(path.join(chartDir, 'templates', '_config.tpl'), 'utf8');
  const managed = /\$managed := list ((?:"[A-Za-z]+" ?)+)/.exec(tpl)![1]!.match(/[A-Za-z]+/g)!;
  const jsonType = { int: 'integer', bool: 'boolean', enum: 'string', list: 'array', string: 'string', hostport: 'string', url: 'string' } as const;
  for (const def of CONFIG_KEYS as readonly KeyDef[]) {
    const prop = configProps[def.key];
    if (managed.includes(def.key)) {
      t.notOk(prop, `${def.key} is set by the chart, not through config`);
      continue;
    }
    if (!prop) { t.fail(`${def.key} can be set neither through config nor by the chart`); continue; }
    const types = ([] as string[]).concat(prop.type);
    t.ok(types.includes(jsonType[def.type as keyof typeof jsonType]), `${def.key}: schema type ${types} fits ${def.type}`);
    if (def.type === 'enum') t.same(prop.enum?.filter((v) => v !== null), def.values, `${def.key}: the same choices`);
    if (def.min !== undefined) t.equal(prop.minimum, def.min, `${def.key}: the same minimum`);
  }
  for (const key of Object.keys(configProps)) t.ok(CONFIG_KEYS.some((d) => d.key === key), `config.${key} is a proxy setting`);
});

t.test('a CSMS CA Secret becomes backendCa, mounted read-only', async (t) => {
  const objects = rendered.get('gateway, redis cluster, explicit backend URL, longer grace')!;
  const config = proxyConfig(objects);
  t.equal(config.backend, 'wss://csms.internal:443/ocpp');
  t.equal(config.backendCa, '/etc/ocpp-proxy/backend-ca/ca.crt');
  const { secretName, mount } = secretVolume(objects, 'ocpp-proxy-backend-ca');
  t.equal(secretName, 'csms-ca', 'the Secret is a volume');
  t.match(mount, { mountPath: '/etc/ocpp-proxy/backend-ca', readOnly: true }, 'mounted read-only where backendCa points');
  t.notOk('backendCa' in proxyConfig(rendered.get('gateway, defaults (embedded store on a PVC)')!), 'absent unless a CA is given');
});

t.test('tunables reach the proxy\'s config as given, and a signing CA Secret becomes caDir', async (t) => {
  const objects = rendered.get('gateway, signing CA and proxy tunables')!;
  const config = proxyConfig(objects);
  t.match(config, { maxSessions: 9000, rotation: false, rotationGraceMs: 0, lockoutThreshold: 8, autoEnrol: true, localSecurityEvents: 'never', heapCompaction: false },
    'false and 0 are kept, not dropped as empty');
  t.equal(config.caDir, '/etc/ocpp-proxy/signing-ca');
  const { secretName, mount } = secretVolume(objects, 'ocpp-proxy-signing-ca');
  t.equal(secretName, 'charger-signing-ca', 'the Secret is a volume');
  t.match(mount, { mountPath: '/etc/ocpp-proxy/signing-ca', readOnly: true }, 'mounted read-only at caDir');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'chart-config-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.yaml');
  writeFileSync(file, (find(objects, 'ConfigMap', '-config')[0]!.data as Record<string, string>)['config.yaml']!);
  const loaded = loadConfig({ file, env: {} });
  t.match(loaded, { maxSessions: 9000, rotation: false, heapCompaction: false, caDir: '/etc/ocpp-proxy/signing-ca' }, 'the proxy reads the rendered config.yaml as meant');
});
