/**
 * The chart used as a dependency of an operator's own CSMS chart (mode=sidecar,
 * sidecar.renderPod=false): the operator's pod spec includes the documented named templates,
 * exactly as the chart README shows. Also the Grafana dashboard ConfigMap, with a dashboard and
 * with only a placeholder in dashboards/.
 */
import t from 'tap';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chartDir, helmCacheDir, K8sObject, lintChart, renderChart, validateManifest } from '../helpers/helm';

/** A YAML block of the chart README, found by its first line (a comment naming the file), without that line. */
function readmeBlock(firstLine: string): string {
  const readme = readFileSync(path.join(chartDir, 'README.md'), 'utf8');
  const block = new RegExp('```yaml\\n' + firstLine.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&') + '\\n([\\s\\S]*?)```').exec(readme);
  if (!block) throw new Error(`no block starting "${firstLine}" in the chart README`);
  return block[1]!;
}

/** The operator's Deployment template and values, taken from the README section "Sidecar in your own chart" as they stand. */
const operatorDeployment = readmeBlock('# your-csms-chart/templates/deployment.yaml');
const operatorValues = readmeBlock('# your-csms-chart/values.yaml');

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
  const deployment = deployments[0].spec as { minReadySeconds: number; strategy: { type: string } };
  t.equal(deployment.minReadySeconds, 20, 'a rollout waits a drain per pod');
  t.equal(deployment.strategy.type, 'Recreate', 'the embedded store\'s volume: the old pod stops first');
  t.same((spec.containers[0] as { lifecycle?: object }).lifecycle, { preStop: { sleep: { seconds: 20 } } }, 'the CSMS stays up while the proxy drains');

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
