/**
 * The process logger's stdout: lines are batched (see proxy/log.ts), yet a lone line still reaches a
 * reader within the flush period, and lines logged just before the process exits are not lost.
 * Each case runs the real logger in a child process whose stdout is a pipe, as under a container.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { LOG_FLUSH_MS } from '../../proxy/log';

const LOG_MODULE = path.join(__dirname, '../../proxy/log.js');

/** Starts `node -e script` with the logger module at hand; collects its stdout lines. */
function child(script: string) {
  const proc = spawn(process.execPath, ['-e', `const { createLogger } = require(${JSON.stringify(LOG_MODULE)});\n${script}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines: Record<string, unknown>[] = [];
  let rest = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop()!;
    for (const p of parts) if (p) lines.push(JSON.parse(p) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  return { proc, lines, exited };
}

t.test('lines logged right before exit are written', async (t) => {
  const c = child(`
    const log = createLogger();
    for (let i = 0; i < 50; i++) log.info({ event: 'before_exit', i });
    process.exit(0);
  `);
  t.equal(await c.exited, 0);
  t.equal(c.lines.filter((l) => l.event === 'before_exit').length, 50, 'every line, none held in the buffer');
});

t.test('an uncaught exception still leaves the lines logged before it', async (t) => {
  const c = child(`
    const log = createLogger();
    log.warn({ event: 'last_words' });
    setImmediate(() => { throw new Error('crash'); });
  `);
  t.not(await c.exited, 0, 'the child crashed');
  t.ok(c.lines.some((l) => l.event === 'last_words'), 'the line before the crash was written');
});

t.test('a lone line reaches the reader within the flush period, while the process runs on', async (t) => {
  const c = child(`
    const log = createLogger();
    log.info({ event: 'quiet_line' });
    setTimeout(() => {}, 30000);
  `);
  t.teardown(() => { if (c.proc.exitCode === null) c.proc.kill('SIGKILL'); });
  const deadline = Date.now() + 20 * LOG_FLUSH_MS + 2000; // generous: the child must start first
  while (!c.lines.some((l) => l.event === 'quiet_line') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.ok(c.lines.some((l) => l.event === 'quiet_line'), 'written without waiting for more lines or for exit');
  t.equal(c.proc.exitCode, null, 'the child was still running');
});

t.test('two processes sharing one stdout pipe, read by a stalling reader: every line arrives, whole', async (t) => {
  // As worker processes share the primary's stdout. The reader keeps stalling, so the pipe fills and
  // the writers' lines wait in their buffers: none may be dropped or cut. (Writes of at most
  // PIPE_BUF are atomic by POSIX; 16 KiB writes did not split a line here either, so this checks
  // the outcome, not that limit.)
  const writer = `
    const log = createLogger();
    const pad = 'x'.repeat(300);
    let n = 0;
    const burst = () => { for (let i = 0; i < 500; i++) log.info({ event: 'shared_pipe', pid: process.pid, n: n++, pad }); if (n < 6000) setImmediate(burst); };
    burst();
  `;
  const code = `const { createLogger } = require(${JSON.stringify(LOG_MODULE)});\n${writer}`;
  const proc = spawn('bash', ['-c', `"$NODE" -e "$CODE" & "$NODE" -e "$CODE" & wait`], {
    stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE: process.execPath, CODE: code },
  });
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL'); });
  let text = '';
  proc.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    proc.stdout.pause(); // a slow reader: the writers find the pipe full again and again
    setTimeout(() => proc.stdout.resume(), 2);
  });
  await new Promise((r) => proc.on('close', r));
  const lines = text.split('\n').filter(Boolean);
  const broken = lines.filter((l) => { try { JSON.parse(l); return false; } catch { return true; } });
  t.equal(broken.length, 0, `no split lines (${broken.length} of ${lines.length})`);
  t.equal(lines.length, 12000, 'every line of both writers arrived');
});
