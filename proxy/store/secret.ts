/**
 * The server secret: one master secret (32+ random bytes) from which separate subkeys are derived with
 * HKDF, so the password-HMAC key, the sealing key and the cache key are independent.
 *
 * Sources, first match wins: an explicit `file`, the `OCPP_PROXY_SECRET` environment variable, then
 * `<generateIn>/server-secret` (read if present, created with mode 0600 otherwise).
 * Text form: hex (64+ digits) or base64 / base64url encoding at least 32 bytes; surrounding whitespace ignored.
 */
import { randomBytes, hkdfSync } from 'node:crypto';
import { promises as fs, constants as fsc } from 'node:fs';
import * as path from 'node:path';
import { StoreError } from './errors';

/** Name of the environment variable holding the secret text. */
export const SECRET_ENV_VAR = 'OCPP_PROXY_SECRET';
/** File name used under the data directory when generating a secret. */
export const GENERATED_SECRET_FILE = 'server-secret';
/** Minimum master secret length in bytes. */
export const MIN_SECRET_BYTES = 32;

/** Derived subkeys; the master secret itself is not kept. */
export interface ServerSecret {
  /** 32-byte key for HMAC-SHA-256 password hashes. */
  readonly passwordKey: Buffer;
  /** 32-byte AES-256-GCM key for sealed values. */
  readonly sealKey: Buffer;
  /** 32-byte key for the verified-password cache fingerprints. */
  readonly cacheKey: Buffer;
  /** Where the secret came from (for a startup log line). */
  readonly source: 'file' | 'env' | 'generated';
  /** The file read or created, when source is not `env`. */
  readonly file?: string;
  /** Non-fatal findings, e.g. a secret file readable by group/others. */
  readonly warnings: string[];
}

/** Options of `loadServerSecret`. */
export interface LoadSecretOptions {
  /** Explicit secret file; wins over everything else. */
  file?: string;
  /** Environment to read `OCPP_PROXY_SECRET` from; defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Data directory: use `<dir>/server-secret`, creating it when missing. */
  generateIn?: string;
}

/**
 * Load (or generate) the server secret and derive its subkeys.
 * @throws StoreError `secret_missing` when no source applies, `secret_invalid` when the text is unusable.
 */
export async function loadServerSecret(opts: LoadSecretOptions = {}): Promise<ServerSecret> {
  if (opts.file) return fromFile(opts.file, 'file');
  const envText = (opts.env ?? process.env)[SECRET_ENV_VAR];
  if (envText !== undefined && envText.trim() !== '') {
    return deriveServerSecret(parseSecretText(envText, `environment variable ${SECRET_ENV_VAR}`), 'env');
  }
  if (opts.generateIn) {
    const file = path.join(opts.generateIn, GENERATED_SECRET_FILE);
    try {
      return await fromFile(file, 'file');
    } catch (err) {
      if (!(err instanceof StoreError && err.reason === 'secret_missing')) throw err;
    }
    await fs.mkdir(opts.generateIn, { recursive: true, mode: 0o700 });
    try {
      // 'wx' so two processes starting together never overwrite each other's secret.
      const fh = await fs.open(file, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o600);
      try {
        await fh.writeFile(randomBytes(MIN_SECRET_BYTES).toString('hex') + '\n');
        await fh.sync();
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StoreError('secret_invalid', `cannot create server secret file ${file}: ${(err as Error).message}`);
      }
    }
    const loaded = await fromFile(file, 'generated');
    return loaded;
  }
  throw new StoreError(
    'secret_missing',
    `no server secret: set ${SECRET_ENV_VAR}, pass a secret file, or give a data directory to generate one in`,
  );
}

/**
 * Decode secret text (hex or base64/base64url) into bytes.
 * @param where names the source in error messages (never the value).
 * @throws StoreError `secret_invalid`
 */
export function parseSecretText(text: string, where: string): Buffer {
  const t = text.trim();
  let bytes: Buffer;
  if (/^[0-9a-fA-F]+$/.test(t) && t.length % 2 === 0) {
    bytes = Buffer.from(t, 'hex');
  } else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) {
    bytes = Buffer.from(t.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  } else {
    throw new StoreError('secret_invalid', `server secret in ${where} is neither hex nor base64`);
  }
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new StoreError(
      'secret_invalid',
      `server secret in ${where} is too short (${bytes.length} bytes, need at least ${MIN_SECRET_BYTES})`,
    );
  }
  return bytes;
}

/** Derive the independent subkeys from a master secret (HKDF-SHA-256). */
export function deriveServerSecret(
  master: Buffer,
  source: ServerSecret['source'],
  file?: string,
  warnings: string[] = [],
): ServerSecret {
  if (master.length < MIN_SECRET_BYTES) {
    throw new StoreError('secret_invalid', `server secret too short (need at least ${MIN_SECRET_BYTES} bytes)`);
  }
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', master, 'ocpp-security-proxy/v1', info, 32));
  return {
    passwordKey: derive('password-hmac'),
    sealKey: derive('seal-aes-256-gcm'),
    cacheKey: derive('verified-cache'),
    source,
    file,
    warnings,
  };
}

async function fromFile(file: string, source: 'file' | 'generated'): Promise<ServerSecret> {
  let text: string;
  const warnings: string[] = [];
  try {
    text = await fs.readFile(file, 'utf8');
    const st = await fs.stat(file);
    if ((st.mode & 0o077) !== 0) {
      warnings.push(`server secret file ${file} is accessible by group/others (mode ${(st.mode & 0o777).toString(8)})`);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new StoreError('secret_missing', `server secret file ${file} does not exist`);
    throw new StoreError('secret_invalid', `cannot read server secret file ${file}: ${code ?? 'error'}`);
  }
  return deriveServerSecret(parseSecretText(text, `file ${file}`), source, file, warnings);
}
