import { parseArgs } from 'node:util';
import { CONFIG_KEYS, flagName } from './config-keys';
import { ConfigError } from './config';
import { closestName } from './did-you-mean';

/** Parsed command line of `serve` (and the store-using commands): config file, key values, positionals. */
export interface ParsedFlags {
  configFile: string | null;
  values: Record<string, unknown>;
  positionals: string[];
  help: boolean;
}

/**
 * Parses `--kebab-case` flags for every configuration key (lists may repeat: `--tls-cert a --tls-cert b`;
 * booleans take `--flag`, `--no-flag` or `--flag=false`), plus `--config FILE` and `--help`.
 * `extra` adds command-specific string options, which shadow a configuration key of the same name.
 * Unknown flags are a {@link ConfigError}.
 */
export function parseFlags(argv: string[], extra: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {}): ParsedFlags {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = { config: { type: 'string' }, help: { type: 'boolean' }, ...extra };
  const boolFlags = new Set<string>();
  for (const def of CONFIG_KEYS) {
    const name = flagName(def.key);
    if (name in extra) continue; // a command's own option shadows the key (e.g. `chargers set --rotation on|off`)
    if (def.type === 'bool') {
      boolFlags.add(name);
      options[name] = { type: 'string' };
    } else options[name] = { type: 'string', multiple: def.type === 'list' };
  }
  // Booleans: `--flag` alone means true, `--no-flag` means false; `--flag=value` is coerced by the loader.
  const normalised = argv.map((arg, i) => {
    const m = /^--(no-)?([a-z0-9-]+)$/.exec(arg);
    if (!m || !boolFlags.has(m[2]!)) return arg;
    const next = argv[i + 1];
    if (!m[1] && next !== undefined && /^(true|false|1|0|yes|no|on|off)$/i.test(next)) return arg;
    return `--${m[2]}=${m[1] ? 'false' : 'true'}`;
  });
  let parsed;
  try {
    parsed = parseArgs({ args: normalised, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-{1,2}[^']+)'/.exec(e.message)?.[1] : undefined;
    if (unknown) {
      const meant = closestName(unknown.replace(/^-+/, '').replace(/=.*$/, ''), Object.keys(options));
      throw new ConfigError(`unknown option ${unknown}${meant ? ` (did you mean --${meant}?)` : ''}`);
    }
    throw new ConfigError(e.message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const values: Record<string, unknown> = {};
  for (const def of CONFIG_KEYS) {
    if (flagName(def.key) in extra) continue;
    const v = (parsed.values as Record<string, unknown>)[flagName(def.key)];
    if (v === undefined) continue;
    // Lists given on the command line may also be comma-separated.
    values[def.key] = Array.isArray(v) ? v.flatMap((s: string) => s.split(',')) : v;
  }
  for (const name of Object.keys(extra)) {
    const v = (parsed.values as Record<string, unknown>)[name];
    if (v !== undefined) values[`extra:${name}`] = v;
  }
  return {
    configFile: (parsed.values.config as string | undefined) ?? null,
    values,
    positionals: parsed.positionals,
    help: parsed.values.help === true,
  };
}

/** Separates command-specific options (`extra:` prefix) from configuration keys. */
export function splitExtra(values: Record<string, unknown>): { config: Record<string, unknown>; extra: Record<string, unknown> } {
  const config: Record<string, unknown> = {};
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (k.startsWith('extra:')) extra[k.slice(6)] = v;
    else config[k] = v;
  }
  return { config, extra };
}
