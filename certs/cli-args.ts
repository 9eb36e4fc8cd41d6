/**
 * A tiny strict flag parser for the `certs` subcommands: every flag takes one value (except
 * `--help`), unknown flags and missing values are errors, repeatable flags collect arrays.
 */

/** How a subcommand's flags look. */
export interface FlagSpec {
  /** Flag names (without "--") that take one value. */
  single: string[];
  /** Flag names that may repeat. */
  multi?: string[];
  /** How many positional arguments are required (exactly). */
  positional?: number;
}

/** Parsed arguments. */
export interface ParsedArgs {
  positional: string[];
  single: Record<string, string>;
  multi: Record<string, string[]>;
  help: boolean;
}

/** Thrown for bad usage; the CLI prints the message and exits with code 2. */
export class UsageError extends Error {
  readonly reason = 'usage';
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Parses `argv` (after the subcommand) against `spec`. Accepts `--flag value` and
 * `--flag=value`.
 * @throws UsageError for unknown flags, missing values, repeated single flags or a wrong
 *   number of positional arguments.
 */
export function parseArgs(argv: string[], spec: FlagSpec): ParsedArgs {
  const parsed: ParsedArgs = { positional: [], single: {}, multi: {}, help: false };
  const multi = spec.multi ?? [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') {
      parsed.help = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      parsed.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq === -1 ? undefined : eq);
    if (!spec.single.includes(name) && !multi.includes(name)) throw new UsageError(`unknown flag --${name}`);
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) value = argv[++i];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value`);
    if (multi.includes(name)) (parsed.multi[name] ??= []).push(value);
    else if (name in parsed.single) throw new UsageError(`--${name} given twice`);
    else parsed.single[name] = value;
  }
  if (!parsed.help && spec.positional !== undefined && parsed.positional.length !== spec.positional) {
    throw new UsageError(spec.positional === 0 ? `unexpected argument ${parsed.positional[0]}` : `expected ${spec.positional} argument(s), got ${parsed.positional.length}`);
  }
  return parsed;
}

/** Returns a required single flag or throws a UsageError naming it. */
export function required(args: ParsedArgs, name: string): string {
  const value = args.single[name];
  if (value === undefined) throw new UsageError(`--${name} is required`);
  return value;
}

/** Parses an optional value that must be one of `choices`. */
export function choice<T extends string>(args: ParsedArgs, name: string, choices: readonly T[], fallback: T): T {
  const value = args.single[name];
  if (value === undefined) return fallback;
  if (!(choices as readonly string[]).includes(value)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}`);
  return value as T;
}

/** Parses an optional positive integer flag. */
export function positiveInt(args: ParsedArgs, name: string): number | undefined {
  const value = args.single[name];
  if (value === undefined) return undefined;
  if (!/^[1-9][0-9]*$/.test(value)) throw new UsageError(`--${name} must be a positive integer`);
  return Number(value);
}
