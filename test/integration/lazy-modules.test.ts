/**
 * `yaml` and `http-proxy` (with follow-redirects) load only when used: a proxy configured by flags
 * and environment, with HTTP passthrough off (the default), starts about 4 MiB smaller. Checked in
 * a fresh Node process, whose module cache tells.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { tempDir } from '../helpers/pki';

const DIST = path.resolve(__dirname, '../..');

/** Runs in the child: the proxy's modules, a config from flags, then a config file, then passthrough on. */
const CHILD = `
const [dist, configFile] = process.argv.slice(1);
const loaded = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
const seen = () => ({ yaml: loaded('yaml'), httpProxy: loaded('http-proxy') });
require(dist + '/proxy/app.js');
require(dist + '/proxy/serve.js');
const { loadConfig } = require(dist + '/proxy/config.js');
const { httpPassthrough } = require(dist + '/proxy/passthrough.js');
const log = { warn() {} };
const forwarding = { headers: false, describe: () => ({ for: '127.0.0.1', proto: 'https' }) };
const out = { imported: seen() };
loadConfig({ env: {}, flags: { backend: 'ws://127.0.0.1:9000/ocpp' } });
httpPassthrough(false, 'ws://127.0.0.1:9000/ocpp', log, forwarding);
out.fromFlags = seen();
const fromFile = loadConfig({ file: configFile, env: {} });
out.fileRead = fromFile.maxSessions === 1234;
out.withFile = seen();
httpPassthrough(true, 'ws://127.0.0.1:9000/ocpp', log, forwarding);
out.withPassthrough = seen();
console.log(JSON.stringify(out));
`;

t.test('yaml loads with a config file, http-proxy with passthrough on; neither before', async (t) => {
  const dir = await tempDir(t, 'lazy-modules-');
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, 'maxSessions: 1234\n');
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['-e', CHILD, DIST, configFile], { timeout: 60_000 }, (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out)));
  });
  const seen = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, unknown>;
  t.same(seen.imported, { yaml: false, httpProxy: false }, 'importing the proxy loads neither');
  t.same(seen.fromFlags, { yaml: false, httpProxy: false }, 'nor does a configuration from flags, with passthrough off');
  t.equal(seen.fileRead, true, 'the config file was read');
  t.same(seen.withFile, { yaml: true, httpProxy: false }, 'a config file loads yaml');
  t.same(seen.withPassthrough, { yaml: true, httpProxy: true }, 'passthrough on loads http-proxy');
});
