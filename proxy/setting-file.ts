import { readFileSync } from 'node:fs';
import { ConfigError } from './config';

const READ_FAILURES: Record<string, string> = { ENOENT: 'does not exist', EACCES: 'cannot be read (permission denied)', EISDIR: 'is a directory' };

/** Reads a file a setting names; a failure is a {@link ConfigError} naming the setting and the file. */
export function readSettingFile(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`"${setting}" file ${file} ${READ_FAILURES[code] ?? `cannot be read (${code})`}`);
  }
}
