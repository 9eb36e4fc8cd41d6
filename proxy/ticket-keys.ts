/**
 * TLS session-ticket keys shared by all replicas (mounted from one Secret), so a charger that
 * reconnects to another replica after a rollout resumes its session instead of paying for a full
 * handshake. Without it each replica has random keys of its own, replaced once per session lifetime,
 * and a reconnect storm after a rollout is a handshake storm.
 *
 * Node takes one 48-byte key blob (16 bytes name + 16 HMAC + 16 AES). Changing the file rolls the
 * key: tickets issued under the old key then fall back to a full handshake, nothing breaks.
 * The key bytes never appear in a log line or an error message.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContextOptions } from 'node:tls';
import { watchFiles } from './file-watch';
import type { Logger } from './log';

/** Bytes `tls.Server.setTicketKeys` requires. */
export const TICKET_KEY_BYTES = 48;

/** Why a key file was not usable. */
export type TicketKeyFailure = 'ticket_keys_unreadable' | 'ticket_keys_invalid';

/** Raised by {@link loadTicketKeys}; the message names the file and the expected format, never the content. */
export class TicketKeyError extends Error {
  constructor(readonly reason: TicketKeyFailure, message: string) {
    super(message);
    this.name = 'TicketKeyError';
  }
}

/** A server whose ticket keys can be set (tls.Server and https.Server both qualify). */
export interface TicketKeyed {
  setTicketKeys(keys: Buffer): void;
  setSecureContext(options: SecureContextOptions & { ticketKeys?: Buffer }): void;
}

/**
 * Reads a ticket key file: exactly 48 raw bytes (`openssl rand 48`), or 96 hex characters
 * (`openssl rand -hex 48`), or base64 of 48 bytes (`openssl rand -base64 48`); surrounding
 * whitespace is ignored for the text forms.
 * @throws TicketKeyError naming the file.
 */
export function loadTicketKeys(file: string): Buffer {
  let content: Buffer;
  try {
    content = readFileSync(file);
  } catch (err) {
    throw new TicketKeyError('ticket_keys_unreadable', `cannot read TLS ticket key file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const text = content.toString('latin1').trim();
  if (/^[0-9a-fA-F]+$/.test(text)) {
    if (text.length === TICKET_KEY_BYTES * 2) return Buffer.from(text, 'hex');
  } else if (/^[A-Za-z0-9+/\s]+={0,2}$/.test(text)) {
    const compact = text.replace(/\s+/g, '');
    const decoded = Buffer.from(compact, 'base64');
    if (decoded.length === TICKET_KEY_BYTES && compact.length % 4 === 0) return decoded;
  } else if (content.length === TICKET_KEY_BYTES) {
    return content; // binary; random keys are all but never pure hex/base64 text
  }
  throw new TicketKeyError(
    'ticket_keys_invalid',
    `TLS ticket key file ${file} must hold exactly ${TICKET_KEY_BYTES} random bytes: raw, as ${TICKET_KEY_BYTES * 2} hex characters, or base64 (found ${content.length} bytes of content)`,
  );
}

/**
 * Puts `keys` on `server` and keeps them there: Node's setSecureContext (the certificate reload in
 * tls.ts) builds a new context with the keys given at construction, silently dropping ours, so
 * every context swap carries the current keys. `set` changes them; `stop` unwraps.
 */
function holdTicketKeys(server: TicketKeyed, keys: Buffer): { set(keys: Buffer): void; stop(): void } {
  let current = keys;
  server.setTicketKeys(current);
  const ownSetSecureContext = Object.prototype.hasOwnProperty.call(server, 'setSecureContext') ? server.setSecureContext : undefined;
  const swapContext = server.setSecureContext;
  server.setSecureContext = function setSecureContextKeepingTicketKeys(options) {
    swapContext.call(this, { ...options, ticketKeys: current });
  };
  return {
    set(next) {
      current = next;
      server.setTicketKeys(next);
    },
    stop() {
      if (ownSetSecureContext) server.setSecureContext = ownSetSecureContext;
      else delete (server as Partial<TicketKeyed>).setSecureContext;
    },
  };
}

/**
 * Sets the ticket keys from `file` on `server` now (throws TicketKeyError if the file is unusable,
 * so a misconfigured replica fails at start) and again whenever the file changes. A broken new file
 * is logged and the previous key stays in force. A certificate reload keeps the current key.
 * Returns a function that stops watching (and unwraps).
 */
export function applyTicketKeys(server: TicketKeyed, file: string, log: Logger, intervalMs = 2000): () => void {
  const held = holdTicketKeys(server, loadTicketKeys(file));
  const stopWatching = watchFiles([file], () => {
    try {
      held.set(loadTicketKeys(file));
      log.info({ event: 'tls_ticket_keys_reloaded', file }, 'TLS session ticket keys reloaded');
    } catch (err) {
      const e = err as TicketKeyError;
      log.error({ event: 'tls_ticket_keys_reload_failed', file, reason: e.reason, err: e.message }, 'TLS ticket key reload failed; keeping the previous key');
    }
  }, intervalMs);
  return () => {
    stopWatching();
    held.stop();
  };
}

/**
 * Without a key file: random keys of this process's own, replaced every `periodMs`. Node keeps one
 * key for the life of the process otherwise, and whoever reads it (a core dump, a memory leak)
 * could decrypt every ticket ever issued, and with TLS 1.2 every session resumed from one. A
 * ticket from before a change falls back to a full handshake, as after a restart.
 */
export function rotateTicketKeys(server: TicketKeyed, periodMs: number, log: Logger): () => void {
  const held = holdTicketKeys(server, randomBytes(TICKET_KEY_BYTES));
  const timer = setInterval(() => {
    held.set(randomBytes(TICKET_KEY_BYTES));
    log.debug({ event: 'tls_ticket_keys_rotated' });
  }, Math.min(periodMs, LONGEST_TIMER_MS));
  timer.unref();
  return () => {
    clearInterval(timer);
    held.stop();
  };
}

/** setInterval's limit: a longer delay would fire after 1 ms. */
const LONGEST_TIMER_MS = 2 ** 31 - 1;
