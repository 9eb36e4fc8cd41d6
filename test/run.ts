/**
 * `npm test`: prepares what every suite shares (the test PKI), runs all compiled test files with tap,
 * shows one line per file plus the full output of any failing file, and ends with the line CI reads:
 * `N passed, N failed` (`, N skipped` when any). Raw TAP of the run is kept in test/.tmp/last-run.tap.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { makeTestPki } from './helpers/pki';
import { TEST_PKI_DIR, TMP_ROOT } from './helpers/proxy';

/** Skips compiled tests whose TypeScript source is gone (stale files in dist/). */
function hasSource(compiled: string): boolean {
  const rel = path.relative(path.resolve(__dirname, '..'), compiled).replace(/\.js$/, '.ts');
  try {
    return statSync(path.resolve(__dirname, '../..', rel)).isFile();
  } catch {
    return false;
  }
}

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) {
      if (name !== 'bench') out.push(...findTests(p));
    } else if (name.endsWith('.test.js') && hasSource(p)) out.push(p);
  }
  return out.sort();
}

async function main(): Promise<number> {
  mkdirSync(TMP_ROOT, { recursive: true });
  await makeTestPki(TEST_PKI_DIR);
  const root = path.resolve(__dirname);
  const filter = process.argv.slice(2);
  let files = findTests(root);
  if (filter.length > 0) files = files.filter((f) => filter.some((x) => f.includes(x)));
  // tap's CLI entry (its package exports do not include the bin path, so resolve it from package.json).
  const tapPkg = require.resolve('tap/package.json');
  const tapBin = path.join(path.dirname(tapPkg), (require(tapPkg) as { bin: { tap: string } }).bin.tap);
  const raw = createWriteStream(path.join(TMP_ROOT, 'last-run.tap'));
  const child = spawn(process.execPath, [tapBin, '--reporter=tap', '--jobs=2', '--disable-coverage', ...files], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FORCE_COLOR: '0' },
  });
  let passed = 0, failed = 0, skipped = 0;
  let fileLines: string[] = [];
  let childPoints = 0;
  let buf = '';
  const onLine = (line: string) => {
    raw.write(line + '\n');
    fileLines.push(line);
    const sub = /^ {4}(not )?ok \d+ - .*?(?:\s#\s*(SKIP|TODO)\b.*)?$/i.exec(line);
    if (sub) {
      childPoints++;
      if (sub[2]) skipped++;
      else if (sub[1]) failed++;
      else passed++;
      return;
    }
    const top = /^(not )?ok \d+ - (\S+)(.*)$/.exec(line);
    if (top) {
      if (childPoints === 0) {
        if (/#\s*SKIP/i.test(top[3] ?? '')) skipped++;
        else if (top[1]) failed++;
        else passed++;
      }
      process.stdout.write(`${top[1] ? 'FAIL' : 'ok  '} ${path.relative(process.cwd(), top[2]!)}${(top[3] ?? '').replace(/#\s*time=/, ' # ')}\n`);
      if (top[1]) process.stdout.write(fileLines.join('\n') + '\n');
      fileLines = [];
      childPoints = 0;
    }
  };
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  const code: number = await new Promise((r) => child.on('close', (c) => r(c ?? 1)));
  if (buf) onLine(buf);
  raw.end();
  if (code !== 0 && failed === 0) failed++; // tap itself failed (crash, timeout) without a test point saying so
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  return failed > 0 ? 1 : 0;
}

main().then((c) => process.exit(c), (err) => {
  process.stdout.write(`test runner failed: ${String(err)}\n0 passed, 1 failed\n`);
  process.exit(1);
});
