/**
 * Wrong values fail the render with a clear message: type and shape errors from
 * values.schema.json, combination errors from the chart's `fail` checks. Also proves the
 * manifest validator used by the other chart tests does reject broken objects.
 */
import t from 'tap';
import { K8sObject, ManifestInvalidError, renderError, validateManifest } from '../helpers/helm';

const tls = { rsa: { secretName: 'proxy-rsa' } };
const good = { mode: 'gateway', gateway: { csms: { service: 'legacy-csms' } }, tls };

/** [case, values, expected message] rejected by values.schema.json. */
const schemaRejects: Array<[string, object, RegExp]> = [
  ['unknown mode', { ...good, mode: 'daemonset' }, /mode: mode must be one of the following: "sidecar", "gateway"/],
  ['zero replicas', { ...good, replicas: 0 }, /replicas: Must be greater than or equal to 1/],
  ['misspelt top-level key', { ...good, replica: 2 }, /Additional property replica is not allowed/],
  ['port as a string', { ...good, ports: { tls: '8443x' } }, /ports\.tls: Invalid type\. Expected: integer, given: string/],
  ['port out of range', { ...good, ports: { admin: 70000 } }, /ports\.admin: Must be less than or equal to 65535/],
  ['http URL for Redis', { ...good, redis: { url: 'http://redis:6379' } }, /redis\.url: Does not match pattern/],
  ['chart-managed config key', { ...good, config: { listen: '0.0.0.0:443' } }, /config: Additional property listen is not allowed/],
  ['dev PKI in the chart', { ...good, config: { devPki: true } }, /config: Additional property devPki is not allowed/],
  ['unknown log format', { ...good, config: { logFormat: 'xml' } }, /config\.logFormat: config\.logFormat must be one of the following: "json", "pretty"/],
  ['negative drain grace', { ...good, config: { drainGraceMs: -1 } }, /config\.drainGraceMs: Must be greater than or equal to 0/],
  ['publicUrl not a ws URL', { ...good, config: { publicUrl: 'https://x/ocpp/' } }, /config\.publicUrl: Does not match pattern/],
  ['publicUrl without TLS', { ...good, config: { publicUrl: 'ws://x/ocpp/' } }, /config\.publicUrl: Does not match pattern/],
  ['bad CIDR', { ...good, config: { trustedProxyCidrs: ['ten.0.0.0/8'] } }, /config\.trustedProxyCidrs\.0: Does not match pattern/],
  ['unknown OCPP subprotocol', { ...good, config: { subprotocols: ['ocpp9.9'] } }, /config\.subprotocols\.0: config\.subprotocols\.0 must be one of the following: "ocpp1\.2"/],
  ['capabilities not dropped', { ...good, securityContext: { capabilities: null } }, /securityContext: capabilities is required/],
  ['ALL not among the dropped capabilities', { ...good, securityContext: { capabilities: { drop: ['NET_RAW'] } } }, /securityContext\.capabilities\.drop: At least one of the items must match/],
  ['no seccomp profile', { ...good, securityContext: { seccompProfile: null } }, /securityContext: seccompProfile is required/],
  ['misspelt resources key', { ...good, resources: { limit: { memory: '1Gi' } } }, /resources: Additional property limit is not allowed/],
  ['writable root filesystem', { ...good, securityContext: { readOnlyRootFilesystem: false, allowPrivilegeEscalation: false } }, /securityContext\.readOnlyRootFilesystem: securityContext\.readOnlyRootFilesystem does not match: true/],
  ['root pod', { ...good, podSecurityContext: { runAsNonRoot: false } }, /podSecurityContext\.runAsNonRoot: podSecurityContext\.runAsNonRoot does not match: true/],
  ['unknown Service type', { ...good, service: { type: 'Ingress' } }, /service\.type: service\.type must be one of the following/],
  ['invalid Secret name', { ...good, tls: { rsa: { secretName: 'Proxy_RSA' } } }, /tls\.rsa\.secretName: Does not match pattern/],
  ['image digest without algorithm', { ...good, image: { repository: 'x', digest: 'latest' } }, /image\.digest: Does not match pattern/],
  ['weak RSA key', { ...good, certManager: { rsaKeySize: 1024 } }, /certManager\.rsaKeySize: certManager\.rsaKeySize must be one of the following: 2048, 3072, 4096/],
  ['bad storage size', { ...good, persistence: { size: 'lots' } }, /persistence\.size: Does not match pattern/],
];

/** [case, values, expected message] rejected by the chart's own checks. */
const templateRejects: Array<[string, object, RegExp]> = [
  ['replicas > 1 on the embedded store', { ...good, replicas: 2 }, /replicas=2 needs Redis \(redis\.url or redis\.existingSecret\.name\)/],
  ['autoscaling on the embedded store', { ...good, autoscaling: { enabled: true } }, /autoscaling\.enabled=true needs Redis/],
  ['gateway without a CSMS', { mode: 'gateway', tls }, /mode=gateway needs gateway\.csms\.service/],
  ['no TLS certificate', { ...good, tls: {} }, /no TLS server certificate: set tls\.rsa\.secretName and\/or tls\.ecdsa\.secretName, or certManager\.enabled=true/],
  ['sidecar without CSMS containers', { mode: 'sidecar', tls }, /mode=sidecar with sidecar\.renderPod=true needs sidecar\.csms\.containers/],
  ['grace period shorter than the drain', { ...good, terminationGracePeriodSeconds: 5 }, /terminationGracePeriodSeconds must be at least 25/],
  ['cert-manager without an issuer', { ...good, tls: {}, certManager: { enabled: true } }, /certManager\.enabled=true needs certManager\.issuerRef\.name/],
  ['two monitors', { ...good, metrics: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } } }, /enable only one of metrics\.serviceMonitor and metrics\.podMonitor/],
  ['two CSMS CA sources', { ...good, gateway: { csms: { url: 'wss://csms:443/ocpp' } }, backendCa: { secretName: 'a', configMapName: 'b' } }, /set only one of backendCa\.secretName and backendCa\.configMapName/],
  ['a CSMS CA for a CSMS reached without TLS', { ...good, backendCa: { secretName: 'csms-ca' } }, /backendCa is set but the CSMS is reached over ws:\/\/ \(no TLS\)/],
  ['two client CA sources', { ...good, clientCa: { secretName: 'a', configMapName: 'b' } }, /set only one of clientCa\.secretName and clientCa\.configMapName/],
  ['NetworkPolicy without the operator pod labels', { ...good, mode: 'sidecar', sidecar: { renderPod: false }, networkPolicy: { enabled: true } }, /networkPolicy and metrics\.podMonitor need sidecar\.externalPodSelector/],
  ['a Redis password in the ConfigMap', { ...good, redis: { url: 'redis://:S3cret@redis:6379' } }, /redis\.url holds credentials, which would be written to a ConfigMap: put the URL in a Secret and set redis\.existingSecret/],
  ['CSMS credentials in the ConfigMap', { ...good, gateway: { csms: { url: 'ws://proxy:pw@csms:9000/ocpp' } } }, /gateway\.csms\.url holds credentials.*use backendAuth\.username and backendAuth\.passwordSecret/],
  ['a CSMS username without a password', { ...good, backendAuth: { username: 'proxy' } }, /backendAuth\.username needs backendAuth\.passwordSecret\.name/],
  ['worker processes', { ...good, redis: { url: 'redis://r:6379' }, config: { workers: 2 } }, /config\.workers > 1 is not supported by the chart.*scale with replicas/],
  ['a pod label the selector owns', { ...good, podLabels: { 'app.kubernetes.io/instance': 'other' } }, /podLabels\.app\.kubernetes\.io\/instance is set by the chart/],
  ['extraEnv overriding a chart-managed key', { ...good, extraEnv: [{ name: 'OCPP_PROXY_ADMIN_LISTEN', value: '127.0.0.1:9100' }] }, /extraEnv OCPP_PROXY_ADMIN_LISTEN would override config\.adminListen, which the chart manages/],
  ['extraEnv turning the dev PKI on', { ...good, extraEnv: [{ name: 'OCPP_PROXY_DEV_PKI', value: 'true' }] }, /extraEnv OCPP_PROXY_DEV_PKI would override config\.devPki/],
  ['extraEnv replacing the server secret', { ...good, extraEnv: [{ name: 'OCPP_PROXY_SECRET', value: 'x' }] }, /extraEnv OCPP_PROXY_SECRET is managed by the chart/],
  ['a disruption budget that blocks every drain', { ...good, podDisruptionBudget: { enabled: true } }, /podDisruptionBudget with replicas=1 and minAvailable > 0 would block every node drain/],
  ['a disruption budget for a pod the chart does not render', { ...good, mode: 'sidecar', sidecar: { renderPod: false }, redis: { url: 'redis://r:6379' }, replicas: 2, podDisruptionBudget: { enabled: true } }, /with sidecar\.renderPod=false, set them in your own chart/],
  ['two Redis sources', { ...good, redis: { url: 'redis://r:6379', existingSecret: { name: 'r' } } }, /set only one of redis\.url and redis\.existingSecret\.name/],
];

for (const [name, values, message] of schemaRejects) {
  t.test(`schema rejects: ${name}`, async (t) => {
    const stderr = await renderError(values);
    t.match(stderr, /values don't meet the specifications of the schema/, 'reported as a schema error');
    t.match(stderr, message, 'names the field and the rule');
  });
}

for (const [name, values, message] of templateRejects) {
  t.test(`chart rejects: ${name}`, async (t) => {
    t.match(await renderError(values), message);
  });
}

t.test('the manifest validator rejects broken objects', async (t) => {
  const deployment: K8sObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'x' },
    spec: { selector: {}, template: { spec: { containers: [{ name: 'a', ports: [{ containerPort: '8443' }] }] } } },
  };
  t.throws(() => validateManifest(deployment), new ManifestInvalidError('Deployment/x', 'data/spec/template/spec/containers/0/ports/0/containerPort must be integer'));
  t.throws(() => validateManifest({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'Bad_Name' } }), /metadata\.name is not a valid object name/);
  t.throws(() => validateManifest({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } }), /no schema for example\.com\/v1 Widget/);
  t.throws(
    () => validateManifest({ apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { name: 'm' }, spec: { selector: {}, endpoints: [] } }),
    /spec\.endpoints must be a non-empty list/,
  );
});
