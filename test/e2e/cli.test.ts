/**
 * The real CLI (`node dist/proxy/cli.js`) as an operator runs it: banner, development PKI, a charger
 * relayed to a legacy CSMS, graceful SIGTERM, configuration errors, `certs init` and `--help`.
 */
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startLegacyCsms } from '../helpers/csms';
import { freePort, waitFor } from '../helpers/net';
import { tempDir } from '../helpers/pki';
import { makeCharger, TEST_PKI_DIR, testServerTls } from '../helpers/proxy';

const CLI = path.resolve(__dirname, '../../proxy/cli.js');

/** The environment without any OCPP_PROXY_* variable of the developer's shell. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OCPP_PROXY_')) env[k] = v;
  return env;
}

/** A running CLI process with its output collected. */
interface CliRun {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

/** Spawns the CLI; the process is killed at teardown if still running. */
function runCli(t: { teardown(fn: () => unknown): void }, args: string[]): CliRun {
  const child = spawn(process.execPath, [CLI, ...args], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, at: Date.now() }));
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Runs the CLI to completion (with a time limit). */
async function runToEnd(t: { teardown(fn: () => unknown): void }, args: string[], limitMs = 20000) {
  const run = runCli(t, args);
  const limit = setTimeout(() => run.child.kill('SIGKILL'), limitMs);
  const end = await run.exited;
  clearTimeout(limit);
  return { code: end.code, stdout: run.stdout(), stderr: run.stderr() };
}

/** One data dir for the serve runs: the dev PKI (an RSA-3072 CA) is generated once per file. */
let sharedDataDir: Promise<string> | null = null;
const dataDirFor = () => (sharedDataDir ??= tempDir(t, 'ocpp-cli-data-'));

t.test('serve: banner, dev PKI, a relayed charger, graceful SIGTERM', async (t) => {
  const dataDir = await dataDirFor();
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const graceMs = 300;
  const jitterMs = 200;
  const run = runCli(t, [
    '--listen', '127.0.0.1:0',
    '--admin-listen', '127.0.0.1:0',
    '--data-dir', dataDir,
    '--backend', csms.url,
    '--report-only', // admission is tested elsewhere: here any identity gets through
    '--drain-grace-ms', String(graceMs),
    '--drain-jitter-ms', String(jitterMs),
    '--log-level', 'warn',
  ]);
  const banner = await waitFor(() => (/Trust this CA:\s+(\S+)[\s\S]*WARNING/.test(run.stdout()) ? run.stdout() : ''), 'the banner', 40000, 50)
    .catch((err: Error) => { throw new Error(`${err.message}\nstdout: ${run.stdout()}\nstderr: ${run.stderr()}`); });
  const where = /Point chargers at:\s+wss:\/\/127\.0\.0\.1:(\d+)\/ocpp\/<charger identity>/.exec(banner);
  t.ok(where, 'the banner says where to point a charger');
  const port = Number(where?.[1]);
  t.ok(port > 0, `the real bound port is printed (${port})`);
  t.match(banner, /Admin \/ metrics:\s+http:\/\/127\.0\.0\.1:\d+\/metrics/, 'the admin address');
  const tokenFile = /Admin API token:\s+(\S+)/.exec(banner)?.[1];
  t.ok(tokenFile && readFileSync(tokenFile, 'utf8').trim().length >= 32, `where the admin API token is (${tokenFile})`);
  t.match(banner, new RegExp(`Legacy CSMS:\\s+${csms.url.replace(/[.]/g, '\\.')}/<charger identity>`), 'the CSMS it relays to');
  t.notMatch(banner, /NOT REACHABLE/, 'reachable');
  const caFile = /Trust this CA:\s+(\S+)/.exec(banner)![1]!;
  t.equal(caFile, path.join(dataDir, 'pki', 'ca.crt'), 'the CA file to trust is the dev PKI CA, as an absolute path');
  t.match(banner, /WARNING: using a generated DEVELOPMENT PKI\. NOT FOR PRODUCTION\./, 'the loud development warning');
  await waitFor(() => /"event":"dev_pki"/.test(run.stdout()), 'the development PKI in the log too', 5000, 50);
  t.match(run.stdout(), /"level":40[^\n]*"event":"dev_pki"[^\n]*not for production/, 'as a warning a log collector sees');
  for (const f of ['ca.crt', 'ca.key', 'server-rsa.crt', 'server-rsa.key', 'server-ec.crt', 'server-ec.key']) {
    t.ok(existsSync(path.join(dataDir, 'pki', f)), `dev PKI file ${f} exists`);
  }
  t.notMatch(run.stdout() + run.stderr(), /BEGIN [A-Z ]*PRIVATE KEY/, 'no private key printed');

  const charger = makeCharger({ identity: 'CP-CLI-1', endpoint: `wss://127.0.0.1:${port}/ocpp`, ca: readFileSync(caFile) });
  await charger.connect();
  const boot = await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' });
  t.equal(boot.status, 'Accepted', 'BootNotification round-trips through the CLI-started proxy');
  t.ok(csms.clients.has('CP-CLI-1'), 'the legacy CSMS saw the charger');

  const closed = new Promise<{ code: number; at: number }>((resolve) => charger.once('close', (e: { code: number }) => resolve({ code: e.code, at: Date.now() })));
  const signalledAt = Date.now();
  run.child.kill('SIGTERM');
  const close = await closed;
  t.equal(close.code, 1001, 'the charger gets 1001 (going away)');
  t.ok(close.at - signalledAt >= graceMs - 50, `closed after the grace (${close.at - signalledAt} ms)`);
  const end = await run.exited;
  t.equal(end.code, 0, 'exit code 0');
  const took = end.at - signalledAt;
  t.ok(took <= graceMs + jitterMs + 1500, `exited ${took} ms after SIGTERM (grace ${graceMs} + jitter ${jitterMs})`);
  t.equal(run.stderr(), '', 'nothing on stderr');
});

t.test('serve in front of a wss:// CSMS: the banner says when its certificate is not trusted, and backendCa fixes that', async (t) => {
  const dataDir = await dataDirFor();
  const csms = await startLegacyCsms({ tls: testServerTls() });
  t.teardown(() => csms.stop());
  const args = ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir, '--backend', csms.url, '--report-only', '--log-level', 'warn'];
  const bannerOf = (run: CliRun) => waitFor(() => (/Trust this CA:[\s\S]*WARNING/.test(run.stdout()) ? run.stdout() : ''), 'the banner', 40000, 50);

  const untrusted = runCli(t, args);
  const banner = await bannerOf(untrusted);
  t.match(banner, /Legacy CSMS:\s+wss:\/\/127\.0\.0\.1:\d+\/ocpp\/<charger identity>\s+NOT TRUSTED now \(CSMS certificate not trusted \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/, 'says the CSMS certificate is not trusted, and why');
  t.match(banner, /chargers get 502 backend_untrusted until backendCa names its CA/, 'and what chargers get until backendCa is set');
  t.notMatch(banner, /NOT REACHABLE/, 'not taken for an unreachable CSMS');
  t.ok(await waitFor(() => /"level":50,[^\n]*"event":"backend_untrusted"|"event":"backend_untrusted"[^\n]*"level":50/.test(untrusted.stdout()) || undefined, 'the error log line'), 'logged as an error too');
  untrusted.child.kill('SIGTERM');
  await untrusted.exited;

  const trusted = runCli(t, [...args, '--backend-ca', path.join(TEST_PKI_DIR, 'ca.crt'), '--public-url', 'wss://ocpp.example.com/ocpp']);
  const clean = await bannerOf(trusted);
  t.notMatch(clean, /NOT TRUSTED|NOT REACHABLE/, 'with backendCa the CSMS is trusted');
  t.match(clean, /Public URL:\s+wss:\/\/ocpp\.example\.com\/ocpp\/<charger identity>\s+\(publicUrl, sent in profile upgrades\)/, 'the banner shows publicUrl, as chargers are told it');
  t.notMatch(banner, /Public URL/, 'and only when it is set');
  t.equal(csms.handshakes.length, 0, 'the probes reached no WebSocket handshake');
  trusted.child.kill('SIGTERM');
  t.equal((await trusted.exited).code, 0);
});

t.test('serve before the CSMS listens: the banner says so; "npm run csms" then lets a charger through', async (t) => {
  const dataDir = await dataDirFor();
  const csmsPort = await freePort();
  const backend = `ws://127.0.0.1:${csmsPort}/ocpp`;
  const run = runCli(t, ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir, '--backend', backend, '--report-only', '--log-level', 'warn']);
  const banner = await waitFor(() => (/Trust this CA:[\s\S]*WARNING/.test(run.stdout()) ? run.stdout() : ''), 'the banner', 40000, 50);
  t.match(banner, new RegExp(`Legacy CSMS:\\s+ws://127\\.0\\.0\\.1:${csmsPort}/ocpp/<charger identity>\\s+NOT REACHABLE now \\(CSMS unreachable \\(ECONNREFUSED\\)\\)`), 'says the CSMS is not reachable, and why');
  t.match(banner, /npm run csms/, 'and how to try without one');
  t.ok(await waitFor(() => /"event":"backend_unreachable"/.test(run.stdout()) || undefined, 'the warning log line'), 'logged as a warning too');
  const port = Number(/Point chargers at:\s+wss:\/\/127\.0\.0\.1:(\d+)\//.exec(banner)![1]);

  // The stand-in, as the README's quick start runs it ("npm run csms" = node dist/test/stand-in-csms.js).
  const standIn = spawn(process.execPath, [path.resolve(__dirname, '../stand-in-csms.js'), '--port', String(csmsPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (standIn.exitCode === null) standIn.kill('SIGKILL'); });
  let standInOut = '';
  standIn.stdout!.on('data', (d: Buffer) => (standInOut += d.toString()));
  await waitFor(() => standInOut.includes(`stand-in CSMS listening on ${backend}`) || undefined, 'the stand-in listening', 20000, 50);

  const charger = makeCharger({ identity: 'CP-CLI-2', endpoint: `wss://127.0.0.1:${port}/ocpp`, ca: readFileSync(path.join(dataDir, 'pki', 'ca.crt')) });
  await charger.connect();
  t.equal((await charger.call('BootNotification', { chargePointVendor: 'Acme', chargePointModel: 'X1' })).status, 'Accepted', 'the stand-in answers through the proxy');
  await charger.close();
  await waitFor(() => /<- CP-CLI-2 \[2,"[^"]+","BootNotification"/.test(standInOut) || undefined, 'the stand-in prints the frames it gets');
  const stopped = new Promise((r) => standIn.once('exit', r));
  standIn.kill('SIGTERM');
  await stopped;
  run.child.kill('SIGTERM');
  t.equal((await run.exited).code, 0);
});

t.test('npm start: when npm exits on SIGTERM (without passing it on), the proxy drains by itself', async (t) => {
  const dataDir = await dataDirFor();
  const adminPort = await freePort();
  const root = path.resolve(__dirname, '../../..');
  const npm = spawn('npm', ['start', '--', '--listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${adminPort}`, '--data-dir', dataDir, '--log-level', 'info'],
    { cwd: root, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  t.teardown(() => { try { process.kill(-npm.pid!, 'SIGKILL'); } catch { /* gone */ } });
  let out = '';
  const outputEnded = new Promise<void>((r) => npm.stdout!.on('end', r)); // held open by the proxy until it exits
  npm.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  npm.stderr!.resume();
  const healthy = () => fetch(`http://127.0.0.1:${adminPort}/healthz`).then((r) => r.ok, () => false);
  await waitFor(healthy, 'the proxy started by npm answers', 30000, 200);
  npm.kill('SIGTERM'); // npm only: the proxy and the shell between them are not signalled
  await Promise.race([outputEnded, new Promise((r) => setTimeout(r, 20000).unref())]);
  t.match(out, /"event":"parent_gone"/, 'the proxy noticed npm was gone');
  t.match(out, /"event":"drain_finished"/, 'and drained as on SIGTERM');
  t.equal(await healthy(), false, 'nothing is left serving');
});

t.test('a port already in use is reported', async (t) => {
  const dataDir = await dataDirFor();
  const net = await import('node:net');
  const blocker = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => blocker.once('listening', r));
  t.teardown(() => blocker.close());
  const port = (blocker.address() as { port: number }).port;
  const r = await runToEnd(t, ['--listen', `127.0.0.1:${port}`, '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'silent'], 40000);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^cannot listen: "listen" 127\\.0\\.0\\.1:${port}: the address is in use`), 'names the setting and the address');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  const admin = await runToEnd(t, ['--listen', '127.0.0.1:0', '--admin-listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--log-level', 'silent'], 40000);
  t.equal(admin.code, 1);
  t.match(admin.stderr, /^cannot listen: "adminListen" /, 'the admin listener too');
});

t.test('a store unreachable at start is reported in one line, password masked', async (t) => {
  const dataDir = await dataDirFor();
  const net = await import('node:net');
  // A port with nothing listening: taken and released again.
  const probe = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => probe.once('listening', r));
  const port = (probe.address() as { port: number }).port;
  await new Promise((r) => probe.close(r));
  const r = await runToEnd(t, ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir, '--log-level', 'silent',
    '--redis', `redis://:redis-secret-pw@127.0.0.1:${port}`], 40000);
  t.equal(r.code, 75, 'exit 75 (EX_TEMPFAIL): try again later');
  t.match(r.stderr, /^store unavailable: /m, 'says what is wrong');
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  t.notMatch(r.stderr, /redis-secret-pw/, 'the Redis password is not printed');
});

t.test('configuration errors exit 2 naming the key', async (t) => {
  const dir = await tempDir(t, 'ocpp-cli-conf-');
  const cases: [string, string[], RegExp][] = [
    ['bad host:port', ['--listen', 'nowhere'], /"listen"/],
    ['bad integer', ['--handshake-timeout-ms', 'soon'], /"handshakeTimeoutMs"/],
    ['bad backend scheme', ['--backend', 'http://127.0.0.1:9000/ocpp'], /"backend"/],
    ['unknown flag', ['--lissen', '127.0.0.1:1'], /unknown option --lissen \(did you mean --listen\?\)/],
    ['unknown subprotocol', ['--subprotocols', 'ocpp9'], /"subprotocols"/],
  ];
  const badFile = path.join(dir, 'bad.yaml');
  writeFileSync(badFile, 'listen: 127.0.0.1:0\nbakend: ws://127.0.0.1:1/ocpp\n');
  cases.push(['unknown key in the config file', ['--config', badFile], /"bakend".*bad\.yaml \(did you mean "backend"\?\)/]);
  cases.push(['missing config file', ['--config', path.join(dir, 'nope.yaml')], /cannot read config file .*nope\.yaml/]);
  // Files a setting names: each refused at start naming the setting and the file, not with a stack
  // or (a certificate with a key of another type) a proxy that starts and fails every handshake.
  const pki = (f: string) => path.join(TEST_PKI_DIR, f);
  const rsa = ['--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-rsa.key')];
  const nope = path.join(dir, 'nope');
  const fileCases: typeof cases = [
    ['RSA certificate with an EC key', ['--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-ec.key')], /"tlsKey" file .*server-ec\.key does not belong to the certificate in .*server-rsa\.crt \(key type ec, certificate key type rsa\)/],
    ['keys given in the other order', ['--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-ec.key'), '--tls-cert', pki('server-ec.crt'), '--tls-key', pki('server-rsa.key')], /"tlsKey" file .*does not belong.*same order/],
    ['two RSA certificates', [...rsa, ...rsa], /two "tlsCert" certificates with rsa keys/],
    ['missing certificate file', ['--tls-cert', nope, '--tls-key', pki('server-rsa.key')], /"tlsCert" file .*nope does not exist/],
    ['a key as the certificate', ['--tls-cert', pki('server-rsa.key'), '--tls-key', pki('server-rsa.key')], /"tlsCert" file .*server-rsa\.key is not a PEM certificate/],
    ['a certificate as the key', ['--tls-cert', pki('server-rsa.crt'), '--tls-key', pki('server-rsa.crt')], /"tlsKey" file .*server-rsa\.crt is not an unencrypted PEM private key/],
    ['missing client CA', [...rsa, '--client-ca', nope], /"clientCa" file .*nope does not exist/],
    ['a client CA without certificates', [...rsa, '--client-ca', pki('server-rsa.key')], /"clientCa" file .*holds no PEM certificate/],
    ['missing signing CA', [...rsa, '--ca-dir', nope], /"caDir": missing .*nope\/ca\.crt/],
    ['missing admin token file', [...rsa, '--admin-token-file', nope], /admin token file .*nope/],
    ['missing CSMS password file', [...rsa, '--backend-password-file', nope], /"backendPasswordFile" file .*nope does not exist/],
  ];
  for (const [what, args, pattern] of fileCases) cases.push([what, ['--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', ...args], pattern]);
  for (const [what, args, pattern] of cases) {
    const r = await runToEnd(t, ['serve', ...args, '--data-dir', dir]);
    t.equal(r.code, 2, `${what}: exit code 2`);
    t.match(r.stderr, /^configuration error: /, `${what}: says it is a configuration error`);
    t.match(r.stderr, pattern, `${what}: names the key (${r.stderr.trim()})`);
    t.notMatch(r.stderr, /\n\s+at /, `${what}: no stack trace`);
  }
  const env = await (async () => {
    const child = spawn(process.execPath, [CLI, '--data-dir', dir], { env: { ...cleanEnv(), OCPP_PROXY_MAX_FRAME_BYTES: 'lots' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    return { code, err };
  })();
  t.equal(env.code, 2, 'a bad environment variable exits 2');
  t.match(env.err, /configuration error: .*"maxFrameBytes".*environment/);
  t.equal(existsSync(path.join(dir, 'pki')), false, 'nothing was generated for a configuration that failed');
});

t.test('certs init --out DIR creates a PKI', async (t) => {
  const dir = await tempDir(t, 'ocpp-cli-certs-');
  const out = path.join(dir, 'pki');
  const r = await runToEnd(t, ['certs', 'init', '--out', out, '--ca-key', 'ec']);
  t.equal(r.code, 0, `exit 0 (${r.stdout}${r.stderr})`);
  for (const f of ['ca.crt', 'ca.key', 'server-rsa.crt', 'server-rsa.key', 'server-ec.crt', 'server-ec.key']) {
    t.ok(existsSync(path.join(out, f)), `${f} created`);
  }
  t.notMatch(r.stdout, /PRIVATE KEY/, 'no key printed');
  const bad = await runToEnd(t, ['certs', 'init']);
  t.equal(bad.code, 2, 'certs init without --out is a usage error');
});

t.test('--help prints usage', async (t) => {
  const top = await runToEnd(t, ['--help']);
  t.equal(top.code, 0);
  t.match(top.stdout, /Usage: ocpp-security-proxy <command>/);
  t.match(top.stdout, /serve/);
  t.match(top.stdout, /certs/);
  const serve = await runToEnd(t, ['serve', '--help']);
  t.equal(serve.code, 0);
  t.match(serve.stdout, /Usage: ocpp-security-proxy \[serve\]/);
  t.match(serve.stdout, /OCPP_PROXY_/, 'explains the environment variables');
  const certs = await runToEnd(t, ['certs', '--help']);
  t.equal(certs.code, 0);
  t.match(certs.stdout, /certs init --out DIR/);
  const unknown = await runToEnd(t, ['frobnicate']);
  t.equal(unknown.code, 2, 'unknown command exits 2');
  t.match(unknown.stderr, /unknown command "frobnicate"/);
});
