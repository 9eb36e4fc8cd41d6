#!/usr/bin/env node
import { runCertsCommand } from '../certs';
import { runChargersCommand } from './chargers-cli';
import { ConfigError } from './config';
import { ListenError } from './listen-at';
import { AdminTokenError } from './admin-token';
import { CaError } from '../certs/ca';
import { runServe } from './serve';
import { StoreError } from './store/errors';
import { EXIT_STORE_UNAVAILABLE } from './workers';

const USAGE = `Usage: ocpp-security-proxy <command> [options]

Commands:
  serve              run the proxy (the default command)
  chargers ...       manage chargers in the credential store (chargers --help)
  certs ...          development PKI, server/charger certificates, CSR signing (certs --help)

Run a command with --help for its options.`;

/** Entry point: dispatches to a command and turns errors into clear messages and exit codes. */
export async function main(argv: string[]): Promise<number> {
  const out = (line: string) => process.stdout.write(line + '\n');
  const [first, ...rest] = argv;
  try {
    if (first === undefined || first.startsWith('-') || first === 'serve') {
      if (first === '--help' || first === '-h') {
        out(USAGE);
        return 0;
      }
      return await runServe(first === 'serve' ? rest : argv, out);
    }
    // `certs revoke` needs the credential store: it is the same action as `chargers revoke`.
    if (first === 'certs' && rest[0] === 'revoke' && !rest.includes('--help')) return await runChargersCommand(rest, out);
    if (first === 'certs') return await runCertsCommand(rest, out);
    if (first === 'chargers') return await runChargersCommand(rest, out);
    if (first === 'help') {
      out(USAGE);
      return 0;
    }
    process.stderr.write(`unknown command "${first}"\n\n${USAGE}\n`);
    return 2;
  } catch (err) {
    // A setting's file that cannot be used: the operator's to fix, named without a stack.
    if (err instanceof ConfigError || err instanceof CaError || err instanceof AdminTokenError) {
      const setting = err instanceof CaError ? '"caDir": ' : '';
      process.stderr.write(`configuration error: ${setting}${err.message}\n`);
      return 2;
    }
    if (err instanceof ListenError) {
      process.stderr.write(`cannot listen: ${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE' || e.code === 'EACCES') {
      process.stderr.write(`cannot listen: ${e.message}\n`);
      return 1;
    }
    if (err instanceof StoreError) { // Redis unreachable at start, a bad secret: an operator's problem, not a bug (no stack)
      process.stderr.write(`${err.reason === 'store_unavailable' ? 'store unavailable' : `store error (${err.reason})`}: ${err.message}\n`);
      // Unreachable: try again later (EX_TEMPFAIL), which the workers' primary waits out.
      return err.reason === 'store_unavailable' ? EXIT_STORE_UNAVAILABLE : 1;
    }
    process.stderr.write(`fatal: ${e.stack ?? String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
