/**
 * The proxy says which C allocator it runs on (allocator.ts): a start-up log line (a warning with a
 * hint on glibc malloc, which degrades after mass disconnects) and the `allocator` label of
 * `ocpp_proxy_build_info`. Checked on the real CLI with jemalloc preloaded, as the container image
 * runs it, and without; and the image's MALLOC_CONF (read from the Dockerfile) really starts
 * jemalloc's purging threads.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { JEMALLOC_MALLOC_CONF } from '../../proxy/allocator';
import { spawnProxy } from '../helpers/proxy-process';
import { scratchDir } from '../helpers/proxy';
import { waitFor } from '../helpers/net';

/** Where Debian's libjemalloc2 puts the library (CI installs it). */
const JEMALLOC = ['/usr/lib/x86_64-linux-gnu/libjemalloc.so.2', '/usr/lib/aarch64-linux-gnu/libjemalloc.so.2', '/usr/lib/libjemalloc.so.2'].find((p) => existsSync(p));

/** The MALLOC_CONF the container image sets. */
function imageMallocConf(): string {
  const dockerfile = readFileSync(path.resolve(__dirname, '../../../Dockerfile'), 'utf8');
  return /MALLOC_CONF=(\S+)/.exec(dockerfile)?.[1] ?? '(no MALLOC_CONF in the Dockerfile)';
}

/** Names of a process's threads. */
function threadNames(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      return ''; // the thread ended meanwhile
    }
  });
}

async function buildInfo(adminUrl: string): Promise<string> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  return /^ocpp_proxy_build_info\{.*\} 1$/m.exec(text)?.[0] ?? '(no build_info)';
}

t.test('allocator reported at start-up and in build_info', async (t) => {
  const dir = scratchDir(t, 'allocator-');

  t.test('glibc malloc: a warning that names the fix', async (t) => {
    const p = await spawnProxy({ dataDir: path.join(dir, 'glibc'), env: { LD_PRELOAD: '' } });
    t.teardown(() => p.stop());
    const line = (await waitFor(() => p.logs.find((l) => l.event === 'allocator'), 'the allocator log line'))!;
    t.equal(line.allocator, 'glibc');
    t.equal(line.level, 40, 'logged as a warning');
    t.match(String(line.hint), /LD_PRELOAD=.*libjemalloc\.so\.2/, 'the hint says how to preload jemalloc');
    t.match(await buildInfo(p.adminUrl), /allocator="glibc"/);
  });

  t.test('jemalloc preloaded: reported, no warning', { skip: JEMALLOC ? false : 'libjemalloc2 is not installed' }, async (t) => {
    const p = await spawnProxy({ dataDir: path.join(dir, 'jemalloc'), env: { LD_PRELOAD: JEMALLOC!, MALLOC_CONF: '' } });
    t.teardown(() => p.stop());
    const line = (await waitFor(() => p.logs.find((l) => l.event === 'allocator'), 'the allocator log line'))!;
    t.equal(line.allocator, 'jemalloc');
    t.equal(line.level, 30, 'logged as info');
    t.match(await buildInfo(p.adminUrl), /allocator="jemalloc"/);
    t.notOk(threadNames(p.pid).includes('jemalloc_bg_thd'), 'no purging thread without MALLOC_CONF');
  });

  t.test("the image's MALLOC_CONF starts jemalloc's background purging", { skip: JEMALLOC ? false : 'libjemalloc2 is not installed' }, async (t) => {
    const conf = imageMallocConf();
    t.equal(conf, JEMALLOC_MALLOC_CONF, 'the Dockerfile sets the MALLOC_CONF the proxy recommends and the bench uses');
    t.match(conf, /background_thread:true/);
    const p = await spawnProxy({ dataDir: path.join(dir, 'jemalloc-conf'), env: { LD_PRELOAD: JEMALLOC!, MALLOC_CONF: conf } });
    t.teardown(() => p.stop());
    await waitFor(() => p.logs.find((l) => l.event === 'allocator'), 'the allocator log line');
    await waitFor(() => threadNames(p.pid).includes('jemalloc_bg_thd'), 'a jemalloc_bg_thd thread', 5000);
    t.pass('jemalloc runs its background purging thread');
  });
});
