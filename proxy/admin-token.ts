/**
 * The admin API's bearer token: where it comes from and how a request's `Authorization` header is
 * checked against it. Sources, first match wins: an explicit file, the `OCPP_PROXY_ADMIN_TOKEN`
 * environment variable, then `<dataDir>/admin-token` (read if present, otherwise created once with
 * mode 0600 holding 32 random bytes in base64url). The token itself is never logged.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Environment variable holding the admin token. */
export const ADMIN_TOKEN_ENV_VAR = 'OCPP_PROXY_ADMIN_TOKEN';
/** File name used under the data directory when generating a token. */
export const GENERATED_TOKEN_FILE = 'admin-token';
/** Shortest token accepted from a file or the environment. */
export const MIN_TOKEN_LENGTH = 16;

/** A token that cannot be used (missing, too short, unreadable). Never contains the token. */
export class AdminTokenError extends Error {
  readonly reason = 'admin_token_invalid';
  constructor(message: string) {
    super(message);
    this.name = 'AdminTokenError';
  }
}

/** The loaded token and where it came from (for a startup log line that names the file, not the token). */
export interface AdminToken {
  token: string;
  source: 'file' | 'env' | 'generated';
  file?: string;
}

/**
 * Loads (or generates) the admin token.
 * @param opts.file explicit token file (config `adminTokenFile`)
 * @param opts.env environment to read `OCPP_PROXY_ADMIN_TOKEN` from (default `process.env`)
 * @param opts.generateIn data directory for `admin-token`
 * @throws AdminTokenError when no source applies or the token is shorter than 16 characters
 */
export async function loadAdminToken(opts: { file?: string | null; env?: Record<string, string | undefined>; generateIn?: string } = {}): Promise<AdminToken> {
  if (opts.file) return { token: await readToken(opts.file), source: 'file', file: opts.file };
  const envText = (opts.env ?? process.env)[ADMIN_TOKEN_ENV_VAR];
  if (envText !== undefined && envText.trim() !== '') return { token: checkToken(envText.trim(), `environment variable ${ADMIN_TOKEN_ENV_VAR}`), source: 'env' };
  if (!opts.generateIn) throw new AdminTokenError(`no admin token: set adminTokenFile or ${ADMIN_TOKEN_ENV_VAR}`);
  const file = path.join(opts.generateIn, GENERATED_TOKEN_FILE);
  await fs.mkdir(opts.generateIn, { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  try {
    // 'wx': never overwrite a token another process wrote first.
    await fs.writeFile(file, token + '\n', { flag: 'wx', mode: 0o600 });
    return { token, source: 'generated', file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return { token: await readToken(file), source: 'file', file };
  }
}

async function readToken(file: string): Promise<string> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    throw new AdminTokenError(`cannot read admin token file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return checkToken(text.trim(), `admin token file ${file}`);
}

function checkToken(token: string, where: string): string {
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new AdminTokenError(`${where} must hold a token of at least ${MIN_TOKEN_LENGTH} characters without spaces`);
  }
  return token;
}

/**
 * True when `authorization` is `Bearer <token>` with exactly the expected token. Both sides are
 * hashed first so the comparison is constant time whatever the lengths.
 */
export function checkBearer(authorization: string | undefined, token: string): boolean {
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization ?? '');
  if (!m) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(m[1]!), digest(token));
}
