/**
 * The chart used as a dependency of an operator's own CSMS chart (mode=sidecar,
 * sidecar.renderPod=false): the operator's pod spec includes the documented named templates,
 * exactly as the chart README shows. Also the Grafana dashboard ConfigMap, with a dashboard and
 * with only a placeholder in dashboards/.
 */
import t from 'tap';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chartDir, helmCacheDir, K8sObject, lintChart, renderChart, validateManifest } from '../helpers/helm';

/** The operator's Deployment template, as in the README section "Sidecar in your own chart". */
const operatorDeployment = `{{- $proxy := dict "Values" (index .Values "ocpp-security-proxy") "Release" .Release }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-csms
spec:
  replicas: 1
  selector:
    matchLabels: {app: csms}
  template:
    metadata:
      labels: {app: csms}
      annotations:
        checksum/ocpp-proxy-config: {{ include "ocpp-security-proxy.configChecksum" $proxy }}
    spec:
      terminationGracePeriodSeconds: {{ include "ocpp-security-proxy.terminationGracePeriodSeconds" $proxy }}
      securityContext:
        runAsNonRoot: true
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: csms
          image: example/legacy-csms:1.0
          ports: [{name: ocpp, containerPort: 9000}]
        {{- include "ocpp-security-proxy.sidecar.container" $proxy | nindent 8 }}
      volumes:
        - name: csms-data
          emptyDir: {}
        {{- include "ocpp-security-proxy.sidecar.volumes" $proxy | nindent 8 }}
`;

const operatorValues = `ocpp-security-proxy:
  mode: sidecar
  sidecar:
    renderPod: false
    externalPodSelector: {app: csms}
    csms: {port: 9000, path: /ocpp}
  tls:
    rsa: {secretName: proxy-rsa}
    ecdsa: {secretName: proxy-ecdsa}
`;

let workDir = '';

/** Copies the chart into `dir`, with dashboards/ holding exactly `dashboards` (name -> text). */
function copyChart(dir: string, dashboards: Record<string, string>): string {
  cpSync(chartDir, dir, { recursive: true });
  const dashDir = path.join(dir, 'dashboards');
  rmSync(dashDir, { recursive: true, force: true });
  mkdirSync(dashDir);
  for (const [name, text] of Object.entries(dashboards)) writeFileSync(path.join(dashDir, name), text);
  return dir;
}

t.before(() => {
  mkdirSync(helmCacheDir, { recursive: true });
  workDir = mkdtempSync(path.join(helmCacheDir, 'include-'));
  const parent = path.join(workDir, 'csms');
  mkdirSync(path.join(parent, 'templates'), { recursive: true });
  writeFileSync(
    path.join(parent, 'Chart.yaml'),
    'apiVersion: v2\nname: csms\nversion: 1.0.0\ndependencies:\n  - name: ocpp-security-proxy\n    version: 0.1.0\n',
  );
  writeFileSync(path.join(parent, 'values.yaml'), operatorValues);
  writeFileSync(path.join(parent, 'templates', 'deployment.yaml'), operatorDeployment);
  copyChart(path.join(parent, 'charts', 'ocpp-security-proxy'), { '.gitkeep': '' });
});

t.teardown(() => rmSync(workDir, { recursive: true, force: true }));

t.test('operator chart includes the proxy as a sidecar', async (t) => {
  const chart = path.join(workDir, 'csms');
  t.match(await lintChart({}, { chart }), /1 chart\(s\) linted, 0 chart\(s\) failed/, 'parent chart lints');
  const objects = await renderChart({}, { chart, release: 'site' });
  for (const obj of objects) t.doesNotThrow(() => validateManifest(obj), `${obj.kind}/${obj.metadata.name} is valid`);

  const deployments = objects.filter((o) => o.kind === 'Deployment');
  t.same(deployments.map((d) => d.metadata.name), ['site-csms'], 'only the operator renders a Deployment');
  const spec = (deployments[0].spec as { template: { spec: { containers: Array<{ name: string }>; volumes: Array<Record<string, unknown>> } } }).template.spec;
  t.same(spec.containers.map((c) => c.name), ['csms', 'ocpp-security-proxy'], 'proxy next to the CSMS');

  const names = new Set(objects.map((o) => `${o.kind}/${o.metadata.name}`));
  const config = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'site-ocpp-security-proxy-config');
  t.ok(config, 'the subchart renders config.yaml');
  t.match((config!.data as Record<string, string>)['config.yaml'], /backend: ws:\/\/127\.0\.0\.1:9000\/ocpp/, 'backend on loopback');
  for (const volume of spec.volumes) {
    const ref = (volume.configMap as { name?: string })?.name;
    if (ref) t.ok(names.has(`ConfigMap/${ref}`), `ConfigMap ${ref} exists`);
    const secret = (volume.secret as { secretName?: string })?.secretName;
    if (secret?.startsWith('site-')) t.ok(names.has(`Secret/${secret}`), `generated Secret ${secret} exists`);
  }
  const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'site-ocpp-security-proxy') as K8sObject;
  t.same((service.spec as { selector: object }).selector, { app: 'csms' }, 'the Service selects the operator pods');
  t.notOk(objects.some((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name.includes('csms')), 'no stray PVC');
});

t.test('Grafana dashboards become one labelled ConfigMap', async (t) => {
  const chart = copyChart(path.join(workDir, 'with-dashboard'), { 'proxy.json': '{"title": "OCPP proxy"}', 'README.md': 'not a dashboard' });
  const values = { mode: 'gateway', gateway: { csms: { service: 'csms' } }, tls: { rsa: { secretName: 'rsa' } } };
  const objects = await renderChart(values, { chart });
  const dashboards = objects.filter((o) => o.metadata.labels?.grafana_dashboard === '1');
  t.equal(dashboards.length, 1, 'one ConfigMap for the Grafana sidecar');
  t.same(Object.keys(dashboards[0].data as object), ['proxy.json'], 'every dashboards/*.json, nothing else');
  t.same(JSON.parse((dashboards[0].data as Record<string, string>)['proxy.json']), { title: 'OCPP proxy' }, 'JSON kept intact');
  validateManifest(dashboards[0]);

  const placeholderOnly = copyChart(path.join(workDir, 'placeholder'), { '.gitkeep': '' });
  const none = await renderChart(values, { chart: placeholderOnly });
  t.notOk(none.some((o) => o.metadata.labels?.grafana_dashboard), 'no ConfigMap with only a placeholder');

  const disabled = await renderChart({ ...values, dashboards: { enabled: false } }, { chart });
  t.notOk(disabled.some((o) => o.metadata.labels?.grafana_dashboard), 'dashboards.enabled=false renders none');
});

t.test('the real chart renders whatever dashboards/ holds today', async (t) => {
  let jsonFiles: string[] = [];
  try {
    jsonFiles = readdirSync(path.join(chartDir, 'dashboards')).filter((f) => f.endsWith('.json'));
  } catch {
    jsonFiles = [];
  }
  const objects = await renderChart({ mode: 'gateway', gateway: { csms: { service: 'csms' } }, tls: { rsa: { secretName: 'rsa' } } });
  const dashboards = objects.filter((o) => o.metadata.labels?.grafana_dashboard === '1');
  t.equal(dashboards.length, jsonFiles.length > 0 ? 1 : 0, 'a ConfigMap exactly when JSON dashboards exist');
});
