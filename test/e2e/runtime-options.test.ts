/**
 * The proxy's Node options (proxy/runtime-options.ts): the container image and `npm start` pass the
 * same ones, they really cap V8's young generation, and a proxy started without them says so.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { missingRuntimeOptions, NODE_RUNTIME_OPTIONS } from '../../proxy/runtime-options';
import { waitFor } from '../helpers/net';
import { TMP_ROOT } from '../helpers/proxy';
import { spawnProxy } from '../helpers/proxy-process';

const REPO = path.resolve(__dirname, '../../..');

t.test('the container image and npm start pass NODE_RUNTIME_OPTIONS before the CLI', async (t) => {
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(path.join(REPO, 'Dockerfile'), 'utf8'))?.[1];
  t.same(JSON.parse(entrypoint ?? '[]'), ['/nodejs/bin/node', ...NODE_RUNTIME_OPTIONS, '/app/dist/proxy/cli.js'], 'Dockerfile ENTRYPOINT');
  const start = JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')).scripts.start as string;
  t.equal(start, ['node', ...NODE_RUNTIME_OPTIONS, 'dist/proxy/cli.js', 'serve'].join(' '), 'npm start');
});

t.test('missingRuntimeOptions: from the command line or NODE_OPTIONS, any value the operator chose', async (t) => {
  t.same(missingRuntimeOptions([], ''), ['--max-semi-space-size=4']);
  t.same(missingRuntimeOptions(['--max-old-space-size=400', '--inspect'], '--trace-gc'), ['--max-semi-space-size=4'], 'other options do not count');
  t.same(missingRuntimeOptions(['--max-semi-space-size=4'], ''), []);
  t.same(missingRuntimeOptions([], '--trace-gc --max-semi-space-size=8'), [], 'in NODE_OPTIONS, another value');
  t.same(missingRuntimeOptions(['--max_semi_space_size=2'], ''), [], 'V8 spelling with underscores');
});

t.test('the options cap the young generation that a burst of allocation grows', async (t) => {
  // Keeps a rolling set of survivors while it allocates, as a storm does; prints new space's size.
  const burst = `const keep = []; for (let i = 0; i < 2e6; i++) { const o = { i, a: [i] }; if (i % 10 === 0) keep.push(o); if (keep.length > 40000) keep.splice(0, 20000); }
    console.log(require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size)`;
  const newSpaceMiB = (options: readonly string[]) => {
    const run = spawnSync(process.execPath, [...options, '-e', burst], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    t.equal(run.status, 0, `node ${options.join(' ')} ran (${run.stderr.trim()})`);
    return Number(run.stdout.trim()) / 1024 / 1024;
  };
  const capped = newSpaceMiB(NODE_RUNTIME_OPTIONS);
  const uncapped = newSpaceMiB([]);
  t.ok(capped <= 8, `with the options: ${capped} MiB of new space (two 4 MiB semi-spaces at most)`);
  t.ok(uncapped > 8, `without: ${uncapped} MiB (V8 grew it past the cap, so the cap is what made the difference)`);
});

t.test('a proxy started without them says which it lacks; with them, nothing', async (t) => {
  const dir = mkdtempSync(path.join(TMP_ROOT, 'runtime-options-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const without = await spawnProxy({ dataDir: path.join(dir, 'without') });
  t.teardown(() => without.stop());
  const line = (await waitFor(() => without.logs.find((l) => l.event === 'runtime_options'), 'the runtime_options line'))!;
  t.same(line.missing, NODE_RUNTIME_OPTIONS);
  t.equal(line.level, 30, 'info: the proxy runs fine, with more memory after storms');
  t.match(String(line.hint), /--max-semi-space-size=4/);

  const withOptions = await spawnProxy({ dataDir: path.join(dir, 'with'), nodeArgs: [...NODE_RUNTIME_OPTIONS] });
  t.teardown(() => withOptions.stop());
  await waitFor(() => withOptions.logs.find((l) => l.event === 'allocator'), 'the start-up lines');
  t.notOk(withOptions.logs.some((l) => l.event === 'runtime_options'), 'no runtime_options line');
});
