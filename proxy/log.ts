import pino, { type Logger } from 'pino';
import { withoutSecrets } from './log-secrets';

export type { Logger };

/** Options for {@link createLogger}. */
export interface LogOptions {
  /** pino level name: trace, debug, info, warn, error, fatal, silent. */
  level?: string;
  /** `json` (one object per line, for machines) or `pretty` (for a human at a terminal). */
  format?: 'json' | 'pretty';
  /** Where lines go; defaults to stdout. Tests pass a stream to read what was logged. */
  destination?: NodeJS.WritableStream;
}

/** Longest a log line waits in the buffer before it is written to stdout. */
export const LOG_FLUSH_MS = 100;
/** Linux's atomic pipe write size: no write to stdout is larger (see createLogger). */
const PIPE_BUF = 4096;

/** Creates the process logger: structured JSON by default, secrets redacted. */
export function createLogger(opts: LogOptions = {}): Logger {
  const options = {
    level: opts.level ?? 'info',
    base: { service: 'ocpp-security-proxy' },
    // Secret fields removed from every line (log-secrets.ts); child bindings: see withoutSecretBindings.
    formatters: { log: withoutSecrets },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (opts.format === 'pretty') {
    // pino-pretty in this thread (no worker), writing synchronously: lines appear in order with the rest.
    // Colours only on a terminal: piped to a file or journald, escape codes would be noise.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pretty = require('pino-pretty') as (o: object) => NodeJS.WritableStream;
    const colorize = opts.destination === undefined && process.stdout.isTTY === true;
    return withoutSecretBindings(pino(options, pretty({ colorize, translateTime: 'SYS:HH:MM:ss.l', destination: opts.destination ?? 1, sync: true })));
  }
  // stdout written asynchronously, off the event loop, in batches: a line waits until 3 KiB are
  // buffered or LOG_FLUSH_MS have passed. One write per line cost a reconnect storm about 0.25 ms of
  // CPU per admission (two lines each), measured. Each write is whole lines and at most PIPE_BUF
  // (4 KiB), so it is atomic on a pipe: worker processes sharing stdout never split each other's
  // lines. pino flushes what is buffered when the process exits. A reader that stops reading (a
  // stuck log shipper) costs at most 16 MiB of buffered lines; newer lines are then dropped.
  return withoutSecretBindings(pino(options, opts.destination ?? pino.destination({
    dest: 1, sync: false, minLength: 3072, maxWrite: PIPE_BUF, periodicFlush: LOG_FLUSH_MS, maxLength: 16 * 2 ** 20,
  })));
}

/**
 * A child logger's bindings lose their secret fields too. pino serialises them once, when the child
 * is made or `setBindings` is called, and passes them through no formatter of ours (it resets
 * `formatters.bindings` for children), so the root's `child` and `setBindings` are wrapped;
 * children inherit both, and their children too.
 */
function withoutSecretBindings(root: Logger): Logger {
  const child = root.child;
  root.child = function (this: Logger, bindings, options) {
    return child.call(this, withoutSecrets(bindings), options);
  } as Logger['child'];
  const setBindings = root.setBindings;
  root.setBindings = function (this: Logger, bindings) {
    setBindings.call(this, withoutSecrets(bindings));
  };
  return root;
}

/** A logger that drops everything (library use and quiet tests). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
