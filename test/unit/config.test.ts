import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, parseHostPort, publicUrlPathMismatch, unknownEnvNames, type ProxyConfig } from '../../proxy/config';
import { CONFIG_KEYS, envName, flagName } from '../../proxy/config-keys';
import { parseFlags, splitExtra } from '../../proxy/flags';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ocpp-config-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a file in the temp dir and returns its path. */
function file(name: string, text: string): string {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Loads with an empty environment unless one is given. */
function load(opts: { file?: string; env?: NodeJS.ProcessEnv; argv?: string[]; flags?: Record<string, unknown> } = {}): ProxyConfig {
  const flags = opts.argv ? parseFlags(opts.argv).values : opts.flags;
  return loadConfig({ file: opts.file, env: opts.env ?? {}, flags });
}

/** Asserts that loading throws a ConfigError whose message matches every pattern. */
function rejects(t: Test, what: string, fn: () => unknown, ...patterns: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof ConfigError, `${what}: ConfigError thrown (got ${String(caught)})`);
  if (!(caught instanceof ConfigError)) return;
  t.equal(caught.reason, 'config_invalid');
  for (const p of patterns) t.match(caught.message, p, `${what}: message ${caught.message}`);
}

t.test('defaults are typed values', async (t) => {
  const c = load();
  t.same(c.listen, { host: '0.0.0.0', port: 8443 }, 'default listen is a HostPort, not the raw string');
  t.same(c.adminListen, { host: '127.0.0.1', port: 9100 });
  t.equal(c.plainListen, null);
  t.equal(c.backend, 'ws://127.0.0.1:9000/ocpp');
  t.equal(c.pathPrefix, '/ocpp/');
  t.same(c.tlsCert, []);
  t.equal(c.devPki, true);
  t.equal(c.reportOnly, false);
  t.equal(c.httpPassthrough, false);
  t.equal(c.handshakeTimeoutMs, 10000);
  t.same(c.subprotocols, ['ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1']);
  t.equal(c.redis, null);
  t.equal(c.logFormat, 'json');
  c.subprotocols.push('mutated');
  t.same(load().subprotocols, ['ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1'], 'a loaded list is a copy, not the shared default');
});

t.test('precedence: defaults < file < env < flags', async (t) => {
  const yaml = file('p.yaml', [
    'listen: 127.0.0.1:1001',
    'backend: ws://csms.example:9000/ocpp/',
    'handshakeTimeoutMs: 1234',
    'subprotocols: [ocpp1.6]',
    'organization: File Org',
    'reportOnly: true',
    'pathPrefix: /cs',
  ].join('\n'));
  const fromFile = load({ file: yaml });
  t.same(fromFile.listen, { host: '127.0.0.1', port: 1001 });
  t.equal(fromFile.backend, 'ws://csms.example:9000/ocpp', 'trailing slash trimmed');
  t.equal(fromFile.handshakeTimeoutMs, 1234);
  t.same(fromFile.subprotocols, ['ocpp1.6']);
  t.equal(fromFile.reportOnly, true);
  t.equal(fromFile.pathPrefix, '/cs/', 'path prefix gets its trailing slash');
  t.equal(fromFile.adminListen.port, 9100, 'keys absent from the file keep defaults');

  const env = {
    OCPP_PROXY_LISTEN: '127.0.0.1:1002',
    OCPP_PROXY_HANDSHAKE_TIMEOUT_MS: '2345',
    OCPP_PROXY_SUBPROTOCOLS: 'ocpp2.0.1, ocpp1.6,',
    OCPP_PROXY_REPORT_ONLY: 'false',
    OCPP_PROXY_EMPTY_IS_IGNORED: '',
    OCPP_PROXY_ORGANIZATION: '',
  };
  const fromEnv = load({ file: yaml, env });
  t.same(fromEnv.listen, { host: '127.0.0.1', port: 1002 }, 'env beats file');
  t.equal(fromEnv.handshakeTimeoutMs, 2345);
  t.same(fromEnv.subprotocols, ['ocpp2.0.1', 'ocpp1.6'], 'env list is comma-separated, trimmed, empties dropped');
  t.equal(fromEnv.reportOnly, false);
  t.equal(fromEnv.organization, 'File Org', 'an empty env var does not override');
  t.equal(fromEnv.backend, 'ws://csms.example:9000/ocpp', 'file value survives where env is silent');

  const fromFlags = load({ file: yaml, env, argv: ['--listen', '127.0.0.1:1003', '--subprotocols', 'ocpp2.1', '--report-only'] });
  t.same(fromFlags.listen, { host: '127.0.0.1', port: 1003 }, 'flag beats env');
  t.same(fromFlags.subprotocols, ['ocpp2.1']);
  t.equal(fromFlags.reportOnly, true);
  t.equal(fromFlags.handshakeTimeoutMs, 2345, 'env value survives where flags are silent');
});

t.test('JSON config files', async (t) => {
  const json = file('c.json', JSON.stringify({ listen: '[::1]:8444', tlsCert: ['a.crt', 'b.crt'], tlsKey: ['a.key', 'b.key'], devPki: false, maxFrameBytes: 65536, logLevel: 'warn' }));
  const c = load({ file: json });
  t.same(c.listen, { host: '::1', port: 8444 });
  t.same(c.tlsCert, ['a.crt', 'b.crt']);
  t.equal(c.devPki, false);
  t.equal(c.maxFrameBytes, 65536);
  t.equal(c.logLevel, 'warn');
  t.same(load({ file: file('empty.yaml', '') }).listen, { host: '0.0.0.0', port: 8443 }, 'an empty file is no settings');
  t.same(load({ file: file('comments.yaml', '# nothing here\n') }).adminListen.port, 9100);
});

t.test('environment: names, lists, the REDIS_URL alias', async (t) => {
  t.equal(envName('plainListen'), 'OCPP_PROXY_PLAIN_LISTEN');
  t.equal(flagName('handshakeTimeoutMs'), 'handshake-timeout-ms');
  const c = load({ env: { OCPP_PROXY_TLS_CERT: 'r.crt,e.crt', OCPP_PROXY_TLS_KEY: 'r.key,e.key', OCPP_PROXY_PLAIN_LISTEN: '127.0.0.1:8080', OCPP_PROXY_DEV_PKI: 'no' } });
  t.same(c.tlsCert, ['r.crt', 'e.crt']);
  t.same(c.tlsKey, ['r.key', 'e.key']);
  t.same(c.plainListen, { host: '127.0.0.1', port: 8080 });
  t.equal(c.devPki, false);
  t.equal(load({ env: { OCPP_PROXY_REDIS_URL: 'redis://127.0.0.1:6379/0' } }).redis, 'redis://127.0.0.1:6379/0', 'alias OCPP_PROXY_REDIS_URL');
  t.equal(load({ env: { OCPP_PROXY_REDIS: 'redis://a:1', OCPP_PROXY_REDIS_URL: 'redis://b:2' } }).redis, 'redis://a:1', 'the primary name wins over the alias');
  t.equal(load({ env: { OCPP_PROXY_REDIS_URL: 'redis://b:2' }, argv: ['--redis', 'redis://c:3'] }).redis, 'redis://c:3', 'flag beats the alias');
  t.equal(load({ env: { OCPP_PROXY_PLAIN_LISTEN: 'off' } }).plainListen, null, 'plain listener can be switched off');
  for (const [v, want] of [['TRUE', true], ['1', true], ['on', true], ['Off', false], ['0', false]] as const) {
    t.equal(load({ env: { OCPP_PROXY_HTTP_PASSTHROUGH: v } }).httpPassthrough, want, `boolean env "${v}"`);
  }
});

t.test('command-line flags', async (t) => {
  const argv = ['--tls-cert', 'rsa.crt', '--tls-cert', 'ec.crt', '--tls-key', 'rsa.key', '--tls-key', 'ec.key', '--http-passthrough', '--no-dev-pki', '--report-only=false', '--config', 'x.yaml', 'extra-pos'];
  const parsed = parseFlags(argv);
  t.equal(parsed.configFile, 'x.yaml');
  t.same(parsed.positionals, ['extra-pos']);
  t.equal(parsed.help, false);
  const c = load({ flags: parsed.values });
  t.same(c.tlsCert, ['rsa.crt', 'ec.crt'], 'repeated --tls-cert');
  t.same(c.tlsKey, ['rsa.key', 'ec.key']);
  t.equal(c.httpPassthrough, true, '--http-passthrough alone means true');
  t.equal(c.devPki, false, '--no-dev-pki');
  t.equal(c.reportOnly, false, '--report-only=false');
  t.equal(load({ argv: ['--report-only', 'true'] }).reportOnly, true, '--report-only true (separate value)');
  t.equal(load({ argv: ['--http-passthrough', '--report-only'] }).httpPassthrough, true, 'bool flag followed by another flag');
  t.equal(load({ argv: ['--no-http-passthrough'], env: { OCPP_PROXY_HTTP_PASSTHROUGH: 'true' } }).httpPassthrough, false, '--no-x beats env');
  t.same(load({ argv: ['--tls-cert', 'a.crt,b.crt', '--tls-key', 'a.key', '--tls-key', 'b.key'] }).tlsCert, ['a.crt', 'b.crt'], 'comma-separated list on the command line');
  t.equal(parseFlags(['--help']).help, true);
  const extra = parseFlags(['--out', 'dir', '--listen', ':1'], { out: { type: 'string' } });
  t.same(splitExtra(extra.values), { config: { listen: ':1' }, extra: { out: 'dir' } }, 'command-specific options are kept apart');
});

t.test('bad values name the key', async (t) => {
  rejects(t, 'unknown key in file', () => load({ file: file('unknown.yaml', 'listen: :1\nlistenn: :2\n') }), /"listenn"/, /unknown\.yaml/);
  rejects(t, 'unknown key in flags object', () => load({ flags: { nope: 1 } }), /"nope"/, /command line/);
  rejects(t, 'unknown flag', () => parseFlags(['--listn', ':1']), /--listn/);
  rejects(t, 'flag without its value', () => parseFlags(['--listen']), /--listen/);
  rejects(t, 'bad int (text)', () => load({ argv: ['--handshake-timeout-ms', '10s'] }), /"handshakeTimeoutMs"/, /--handshake-timeout-ms/, /OCPP_PROXY_HANDSHAKE_TIMEOUT_MS/, /integer/);
  rejects(t, 'bad int (decimal in file)', () => load({ file: file('dec.yaml', 'maxFrameBytes: 1.5\n') }), /"maxFrameBytes"/, /dec\.yaml/);
  rejects(t, 'int below minimum', () => load({ env: { OCPP_PROXY_MAX_FRAME_BYTES: '10' } }), /"maxFrameBytes"/, /at least 1024/, /environment/);
  rejects(t, 'int above maximum', () => load({ env: { OCPP_PROXY_TLS_SESSION_TIMEOUT_S: '604801' } }), /"tlsSessionTimeoutS"/, /at most 604800/, /environment/);
  t.equal(load({ env: {} }).tlsSessionTimeoutS, 86400, 'TLS sessions resumable for 24 h by default');
  rejects(t, 'negative int', () => load({ argv: ['--drain-grace-ms=-5'] }), /"drainGraceMs"/);
  rejects(t, 'bad URL scheme', () => load({ argv: ['--backend', 'http://127.0.0.1:9000/ocpp'] }), /"backend"/, /ws:\/\/ or wss:\/\//);
  rejects(t, 'not a URL', () => load({ env: { OCPP_PROXY_BACKEND: 'not a url' } }), /"backend"/, /not a valid URL/);
  rejects(t, 'publicUrl without TLS', () => load({ argv: ['--public-url', 'ws://ocpp.example.com/ocpp/'] }), /"publicUrl"/, /wss:\/\//);
  rejects(t, 'publicUrl with a query', () => load({ argv: ['--public-url', 'wss://ocpp.example.com/ocpp/?x=1'] }), /"publicUrl"/, /query/);
  rejects(t, 'publicUrl not a URL', () => load({ argv: ['--public-url', 'ocpp.example.com/ocpp'] }), /"publicUrl"/, /not a URL/);
  rejects(t, 'publicUrl longer than a 2.0.1 charger takes', () => load({ argv: ['--public-url', 'wss://ocpp.example.com/' + 'a'.repeat(500)] }), /"publicUrl" is 523 characters/, /at most 512/);
  t.test('publicUrl whose path is not pathPrefix: warned, not refused (a front may rewrite the path)', async (t) => {
    const c = load({ argv: ['--public-url', 'wss://ocpp.example.com/chargers', '--path-prefix', '/ocpp'] });
    t.match(publicUrlPathMismatch(c.publicUrl, c.pathPrefix), /\/chargers\/<identity>.*\/ocpp\/<identity>/);
    t.match(publicUrlPathMismatch('wss://ocpp.example.com', '/ocpp/'), /connect to \/<identity>, but/, 'no path at all');
    for (const url of ['wss://ocpp.example.com/ocpp', 'wss://ocpp.example.com/ocpp/', 'wss://ocpp.example.com:8443/ocpp//']) {
      t.equal(publicUrlPathMismatch(url, '/ocpp/'), null, `${url} agrees with /ocpp/`);
    }
    t.equal(publicUrlPathMismatch(null, '/ocpp/'), null, 'no publicUrl, nothing to say');
  });
  rejects(t, 'two listeners on one address', () => load({ argv: ['--listen', '127.0.0.1:8443', '--admin-listen', '127.0.0.1:8443'] }), /"listen" and "adminListen" both use port 8443/);
  rejects(t, 'a wildcard and an address on one port', () => load({ argv: ['--plain-listen', '0.0.0.0:9100', '--admin-listen', '127.0.0.1:9100'] }), /"plainListen" and "adminListen" both use port 9100/);
  t.equal(load({ argv: ['--listen', '127.0.0.1:8443', '--admin-listen', '127.0.0.2:8443'] }).adminListen.port, 8443, 'one port on two addresses is fine');
  t.equal(load({ argv: ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0'] }).listen.port, 0, 'port 0 (any free port) twice is fine');
  t.equal(load({ argv: ['--listen', '0.0.0.0:8443', '--admin-listen', '[::1]:8443'] }).adminListen.host, '::1', 'the IPv4 wildcard and an IPv6 address bind side by side');
  rejects(t, 'the dual-stack wildcard and an IPv4 address on one port', () => load({ argv: ['--listen', '[::]:8443', '--admin-listen', '127.0.0.1:8443'] }), /"listen" and "adminListen" both use port 8443/);
  rejects(t, 'URL not a string', () => load({ file: file('url.yaml', 'backend: 5\n') }), /"backend"/);
  rejects(t, 'bad host:port', () => load({ argv: ['--listen', 'localhost'] }), /"listen"/, /host:port/);
  rejects(t, 'port out of range', () => load({ argv: ['--admin-listen', '127.0.0.1:70000'] }), /"adminListen"/, /out of range/);
  rejects(t, 'unbracketed IPv6', () => load({ argv: ['--plain-listen', '::1:8080'] }), /"plainListen"/);
  rejects(t, 'the TLS listener cannot be turned off', () => load({ argv: ['--listen', 'off'] }), /"listen"/);
  rejects(t, 'the admin listener cannot be turned off', () => load({ env: { OCPP_PROXY_ADMIN_LISTEN: 'off' } }), /"adminListen"/);
  rejects(t, 'bad boolean', () => load({ argv: ['--report-only=maybe'] }), /"reportOnly"/, /true or false/);
  rejects(t, 'bad boolean in file', () => load({ file: file('bool.yaml', 'devPki: 2\n') }), /"devPki"/);
  rejects(t, 'bad enum', () => load({ argv: ['--log-format', 'xml'] }), /"logFormat"/, /json, pretty/);
  rejects(t, 'list of non-strings', () => load({ file: file('list.yaml', 'subprotocols: [1, 2]\n') }), /"subprotocols"/);
  rejects(t, 'string given a mapping', () => load({ file: file('str.yaml', 'organization: {a: 1}\n') }), /"organization"/);
  rejects(t, 'tlsCert/tlsKey count mismatch', () => load({ argv: ['--tls-cert', 'a.crt', '--tls-cert', 'b.crt', '--tls-key', 'a.key'] }), /"tlsCert"/, /"tlsKey"/, /2 and 1/);
  rejects(t, 'three certificates', () => load({ env: { OCPP_PROXY_TLS_CERT: 'a,b,c', OCPP_PROXY_TLS_KEY: 'a,b,c' } }), /"tlsCert"/, /at most twice/);
  rejects(t, 'unknown subprotocol', () => load({ argv: ['--subprotocols', 'ocpp1.6,ocpp3.0'] }), /"subprotocols"/, /ocpp3\.0/);
  rejects(t, 'empty subprotocols', () => load({ env: { OCPP_PROXY_SUBPROTOCOLS: ' , ' } }), /"subprotocols"/);
  rejects(t, 'path prefix without slash', () => load({ argv: ['--path-prefix', 'ocpp'] }), /"pathPrefix"/);
  rejects(t, 'certificates born due for renewal', () => load({ argv: ['--charger-cert-days', '30'] }), /"renewBeforeDays" \(30\) must be less than "chargerCertDays" \(30\)/);
  t.equal(load({ argv: ['--charger-cert-days', '31'] }).renewBeforeDays, 30, 'one day more is fine');
  rejects(t, 'unreadable file', () => load({ file: path.join(dir, 'missing.yaml') }), /cannot read config file/, /missing\.yaml/, /ENOENT/);
  rejects(t, 'a directory as config file', () => load({ file: dir }), /cannot read config file/);
  rejects(t, 'invalid YAML', () => load({ file: file('bad.yaml', 'listen: [unclosed\n  backend: : :\n') }), /not valid YAML/, /bad\.yaml/);
  rejects(t, 'invalid JSON', () => load({ file: file('bad.json', '{"listen": ":1",}x') }), /bad\.json/);
  rejects(t, 'file that is a list', () => load({ file: file('list-root.yaml', '- a\n- b\n') }), /mapping/);
  rejects(t, 'file that is a scalar', () => load({ file: file('scalar.yaml', 'just text\n') }), /mapping/);
});

t.test('secrets never appear in messages', async (t) => {
  const secretFile = file('secret.yaml', 'backendPasswordFile: /run/secret\nbackendPassword: hunter2-secret\n');
  rejects(t, 'unknown key that looks like a password', () => load({ file: secretFile }), /"backendPassword"/);
  try {
    load({ file: secretFile });
  } catch (err) {
    t.notMatch((err as Error).message, /hunter2/, 'the value is not echoed');
  }
});

t.test('parseHostPort forms', async (t) => {
  t.same(parseHostPort('127.0.0.1:8443'), { host: '127.0.0.1', port: 8443 });
  t.same(parseHostPort('localhost:80'), { host: 'localhost', port: 80 });
  t.same(parseHostPort('[::1]:8443'), { host: '::1', port: 8443 });
  t.same(parseHostPort('[::]:1'), { host: '::', port: 1 });
  t.same(parseHostPort('[2001:db8::1]:65535'), { host: '2001:db8::1', port: 65535 });
  t.same(parseHostPort(':9100'), { host: '0.0.0.0', port: 9100 }, 'empty host means all interfaces');
  t.same(parseHostPort('9100'), { host: '0.0.0.0', port: 9100 }, 'bare port');
  t.same(parseHostPort(' 127.0.0.1:0 '), { host: '127.0.0.1', port: 0 }, 'port 0 (OS picks) and surrounding space');
  for (const bad of ['', 'localhost', '127.0.0.1:', '127.0.0.1:65536', '::1:8443', '[::1]', '[::1]8443', 'a b:1', 'host:port', '1.2.3.4:123456', '[zz::1]:1']) {
    t.throws(() => parseHostPort(bad), ConfigError, `refused: "${bad}"`);
  }
  t.throws(() => parseHostPort('x', (why) => new RangeError(`custom ${why}`)), { name: 'RangeError', message: /custom expected host:port/ }, 'custom error factory');
});

t.test('every configuration key is in the README configuration table', async (t) => {
  const readme = path.resolve(__dirname, '../../../README.md');
  t.ok(existsSync(readme), 'README.md exists');
  const text = existsSync(readme) ? readFileSync(readme, 'utf8') : '';
  const missing = CONFIG_KEYS.map((k) => k.key).filter((k) => !text.includes('`' + k + '`'));
  t.same(missing, [], 'every CONFIG_KEYS key appears as `key` in README.md');
});

t.test('the key table is consistent', async (t) => {
  const names = CONFIG_KEYS.map((k) => k.key);
  t.equal(new Set(names).size, names.length, 'no duplicate keys');
  for (const k of CONFIG_KEYS) {
    t.ok(k.doc.length > 5, `${k.key} has a doc line`);
    t.match(k.key, /^[a-z][A-Za-z]*$/, `${k.key} is camelCase`);
  }
});

t.test('unknownEnvNames: OCPP_PROXY_ variables the proxy does not read', async (t) => {
  t.same(unknownEnvNames({
    OCPP_PROXY_MAX_SESSIONS: '5', OCPP_PROXY_MAX_SESION: '5', OCPP_PROXY_REDIS_URL: 'redis://r', OCPP_PROXY_SECRET: 'x', OCPP_PROXY_ADMIN_TOKEN: 'y',
    OCPP_PROXY_BACKEND_PASSWORD: 'z', OCPP_PROXY_WORKER_INDEX: '2', OCPP_PROXY_LISTN: 'a', HOME: '/root', OCPP_PROXYISH: '1',
  }), ['OCPP_PROXY_LISTN', 'OCPP_PROXY_MAX_SESION'], 'misspelt keys, sorted; keys, aliases, secrets and the worker index are known');
});
