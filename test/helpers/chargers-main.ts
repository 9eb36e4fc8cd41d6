/**
 * Test entry point: runs `chargers ...` as a real process (until proxy/cli.ts dispatches to it),
 * so tests can exercise stdin, stdout, stderr and exit codes end to end.
 */
import { runChargersCommand } from '../../proxy/chargers-cli';

runChargersCommand(process.argv.slice(2), (line) => process.stdout.write(line + '\n')).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => { process.stderr.write(`fatal: ${String(err)}\n`); process.exitCode = 1; },
);
