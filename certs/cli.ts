/**
 * The `certs` command family: development PKI, server and charger certificates, CSR signing and
 * listing. `certs revoke` needs the credential store and is wired by the proxy CLI, which can use
 * `parseRevokeArgs` from here.
 *
 * Exit codes: 0 success, 1 the operation failed (missing CA, rejected CSR, ...), 2 bad usage.
 * Nothing secret (private keys) is ever printed.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { splitPemCertificates } from './build';
import { CaError, loadCa } from './ca';
import { CsrError, signCsr } from './csr';
import { ensureDevPki } from './dev-pki';
import { IssueError, issueChargerCertificate, issueServerCertificate, IssuedCertificate } from './issue';
import { writePemFile } from './files';
import { certificateInfo, normaliseSerial, SerialError } from './revocation';
import { choice, parseArgs, positiveInt, required, UsageError } from './cli-args';

/** Usage text printed for `certs --help` and after usage errors. */
export const CERTS_USAGE = `Usage: certs <command> [options]

  certs init --out DIR [--host H]... [--org O] [--ca-key rsa|ec]
      Create (or reuse) a development PKI in DIR: ca.crt/ca.key (RSA-3072 root unless
      --ca-key ec), server-rsa.crt/.key and server-ec.crt/.key for the hosts
      (default localhost, 127.0.0.1, ::1).
  certs server --ca DIR --host H [--host H]... --key rsa|ec --out PREFIX [--org O] [--days N]
      Issue a TLS server certificate: writes PREFIX.crt (leaf + chain) and PREFIX.key.
  certs charger --ca DIR --serial CN [--org O] [--key ec|rsa] [--days N] --out PREFIX
      Issue a charger (client) certificate, CN = charger serial number.
  certs sign CSR_FILE --ca DIR [--cn X] [--org O] [--days N] [--out FILE]
      Sign a charger CSR (PEM PKCS#10); prints the chain unless --out is given.
  certs list --dir DIR
      List the certificates in DIR's .crt/.pem files: serial, subject, expiry.
  certs revoke SERIAL
      Revoke a charger certificate by serial (needs the credential store).

The CA directory holds ca.crt, ca.key and optionally intermediate.crt/intermediate.key.
Exit codes: 0 ok, 1 failed, 2 bad usage.`;

type Out = (line: string) => void;

/**
 * Runs one `certs` command. `argv` starts with the subcommand (a leading "certs" is skipped).
 * @returns the process exit code.
 */
export async function runCertsCommand(argv: string[], out: Out): Promise<number> {
  const args = argv[0] === 'certs' ? argv.slice(1) : argv;
  const [command, ...rest] = args;
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      out(CERTS_USAGE);
      return command === undefined ? 2 : 0;
    }
    const handler = COMMANDS[command];
    if (!handler) throw new UsageError(`unknown command "${command}"`);
    return await handler(rest, out);
  } catch (err) {
    if (err instanceof UsageError) {
      out(`error: ${err.message}`);
      out('run "certs --help" for usage');
      return 2;
    }
    if (err instanceof CaError || err instanceof CsrError || err instanceof IssueError || err instanceof SerialError) {
      out(`error: ${err.message} (${err.reason})`);
      return 1;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') {
      out(`error: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }
}

/**
 * Parses `certs revoke SERIAL` arguments into the canonical serial.
 * @throws UsageError for missing/extra arguments or a serial that is not hex.
 */
export function parseRevokeArgs(argv: string[]): { serialHex: string } {
  const args = parseArgs(argv, { single: [], positional: 1 });
  try {
    return { serialHex: normaliseSerial(args.positional[0]) };
  } catch (err) {
    if (err instanceof SerialError) throw new UsageError(`SERIAL must be hexadecimal, got "${args.positional[0]}"`);
    throw err;
  }
}

const COMMANDS: Record<string, (argv: string[], out: Out) => Promise<number>> = {
  async init(argv, out) {
    const args = parseArgs(argv, { single: ['out', 'org', 'ca-key'], multi: ['host'], positional: 0 });
    if (args.help) return help(out);
    const paths = await ensureDevPki(required(args, 'out'), {
      hosts: args.multi.host,
      organization: args.single.org,
      caKeyType: choice(args, 'ca-key', ['rsa', 'ec'] as const, 'rsa'),
    });
    out(`${paths.created ? 'created' : 'reused'} development PKI in ${paths.dir}`);
    for (const file of [paths.caCert, paths.rsaCert, paths.ecCert]) out(`  ${file}`);
    return 0;
  },

  async server(argv, out) {
    const args = parseArgs(argv, { single: ['ca', 'key', 'out', 'org', 'days'], multi: ['host'], positional: 0 });
    if (args.help) return help(out);
    const hosts = args.multi.host ?? [];
    if (hosts.length === 0) throw new UsageError('--host is required');
    const keyType = choice(args, 'key', ['rsa', 'ec'] as const, 'rsa');
    if (args.single.key === undefined) throw new UsageError('--key is required (rsa or ec)');
    const prefix = required(args, 'out');
    const days = positiveInt(args, 'days');
    const ca = await loadCa(required(args, 'ca'));
    await writeIssued(prefix, await issueServerCertificate(ca, { hosts, keyType, organization: args.single.org, days }), out);
    return 0;
  },

  async charger(argv, out) {
    const args = parseArgs(argv, { single: ['ca', 'serial', 'org', 'key', 'days', 'out'], positional: 0 });
    if (args.help) return help(out);
    const commonName = required(args, 'serial');
    const keyType = choice(args, 'key', ['ec', 'rsa'] as const, 'ec');
    const prefix = required(args, 'out');
    const days = positiveInt(args, 'days');
    const ca = await loadCa(required(args, 'ca'));
    await writeIssued(prefix, await issueChargerCertificate(ca, { commonName, organization: args.single.org, keyType, days }), out);
    return 0;
  },

  async sign(argv, out) {
    const args = parseArgs(argv, { single: ['ca', 'cn', 'org', 'days', 'out'], positional: 1 });
    if (args.help) return help(out);
    const caDir = required(args, 'ca');
    const days = positiveInt(args, 'days');
    const csrPem = await fs.readFile(args.positional[0], 'utf8');
    const ca = await loadCa(caDir);
    const result = await signCsr(ca, csrPem, { expectedCommonName: args.single.cn, expectedOrganization: args.single.org, days });
    if (!result.ok) {
      out(`error: CSR rejected (${result.reason})`);
      return 1;
    }
    if (args.single.out) {
      await writePemFile(args.single.out, result.chainPem, false);
      out(`wrote ${args.single.out} serial ${result.serialHex} expires ${result.notAfter.toISOString()}`);
    } else {
      out(result.chainPem.trimEnd());
    }
    return 0;
  },

  async list(argv, out) {
    const args = parseArgs(argv, { single: ['dir'], positional: 0 });
    if (args.help) return help(out);
    const dir = required(args, 'dir');
    const files = (await fs.readdir(dir)).filter((f) => /\.(crt|pem|cer)$/.test(f)).sort();
    if (files.length === 0) out(`no certificate files in ${dir}`);
    for (const file of files) {
      const blocks = splitPemCertificates(await fs.readFile(path.join(dir, file), 'utf8'));
      if (blocks.length === 0) out(`${file}\t(no certificate)`);
      for (const block of blocks) {
        try {
          const info = certificateInfo(block);
          const subject = [info.subject.CN && `CN=${info.subject.CN}`, info.subject.O && `O=${info.subject.O}`].filter(Boolean).join(',');
          out(`${file}\t${info.serialHex}\t${subject}\texpires ${info.notAfter.toISOString()}${info.notAfter < new Date() ? ' (EXPIRED)' : ''}`);
        } catch {
          out(`${file}\t(unparsable certificate)`);
        }
      }
    }
    return 0;
  },

  async revoke(argv, out) {
    parseRevokeArgs(argv);
    out('error: "certs revoke" needs the credential store; run it through the proxy CLI');
    return 1;
  },
};

function help(out: Out): number {
  out(CERTS_USAGE);
  return 0;
}

async function writeIssued(prefix: string, issued: IssuedCertificate, out: Out): Promise<void> {
  await writePemFile(`${prefix}.key`, issued.keyPem, true);
  await writePemFile(`${prefix}.crt`, issued.chainPem, false);
  out(`wrote ${prefix}.crt and ${prefix}.key serial ${issued.serialHex} expires ${issued.notAfter.toISOString()}`);
}
