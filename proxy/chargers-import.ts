/** CSV import of chargers: every line is checked before anything is written. */
import { CsvError, parseCsv } from './csv';
import { ChargerAdminError, checkBackendPassword, checkBackendUsername, checkIdentity, checkPassword, checkText, parseProfile, type ChargerInput, type ImportLineError } from './chargers-model';

const CSV_COLUMNS = ['identity', 'password', 'profile', 'serial', 'organization', 'backend_username', 'backend_password'] as const;

/**
 * The import file's text. It must be UTF-8: a legacy encoding (a Windows-1252 export, say) decoded
 * leniently would turn a password's "ä" into U+FFFD, stored without a word, and the charger refused.
 */
export function importText(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // Valid UTF-8 comes back byte for byte; anything else was replaced with U+FFFD somewhere.
  const again = Buffer.from(text, 'utf8');
  if (again.equals(bytes)) return text;
  let at = 0;
  while (at < bytes.length && bytes[at] === again[at]) at++;
  let line = 1;
  for (let i = bytes.indexOf(0x0a); i >= 0 && i < at; i = bytes.indexOf(0x0a, i + 1)) line++;
  const message = 'the file is not UTF-8 (save it as CSV UTF-8); nothing was imported';
  throw new ChargerAdminError('import_invalid', message, [{ line, message: 'not UTF-8' }]);
}

/** Parses and validates every import line (no hashing yet); throws one error listing all bad lines. */
export function readImportRows(text: string, allowShort: boolean): (ChargerInput & { line: number })[] {
  let rows;
  try {
    rows = parseCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new ChargerAdminError('import_invalid', err.message, [{ line: err.line, message: err.message }]);
    throw err;
  }
  const header = rows.shift();
  const names = header?.fields.map((f) => f.trim().toLowerCase()) ?? [];
  // Unknown columns are named by position only: a missing header means line 1 may hold a password.
  const unknown = names.flatMap((n, i) => ((CSV_COLUMNS as readonly string[]).includes(n) ? [] : [String(i + 1)]));
  if (!header || !names.includes('identity') || unknown.length > 0 || new Set(names).size !== names.length) {
    const message = `the first line must be a header naming columns among ${CSV_COLUMNS.join(',')} (identity required, no repeats)` + (unknown.length ? `; unknown column(s) at position ${unknown.join(', ')}` : '');
    throw new ChargerAdminError('import_invalid', message, [{ line: header?.line ?? 1, message }]);
  }
  const errors: ImportLineError[] = [];
  const seen = new Map<string, number>();
  const out: (ChargerInput & { line: number })[] = [];
  for (const row of rows) {
    const cell = (n: string) => { const i = names.indexOf(n); return i < 0 ? '' : (row.fields[i] ?? '').trim(); };
    try {
      if (row.fields.length !== names.length) throw new ChargerAdminError('bad_input', `expected ${names.length} fields, found ${row.fields.length}`);
      const identity = cell('identity');
      checkIdentity(identity);
      const first = seen.get(identity);
      if (first !== undefined) throw new ChargerAdminError('bad_input', `identity ${identity} already appears on line ${first}`);
      seen.set(identity, row.line);
      const input: ChargerInput & { line: number } = { line: row.line, identity, allowShortPassword: allowShort };
      const pw = row.fields[names.indexOf('password')]; // passwords keep their spaces
      if (pw) { input.password = Buffer.from(pw, 'utf8'); checkPassword(input.password, allowShort, []); }
      if (cell('profile')) input.profile = parseProfile(cell('profile'));
      if (cell('serial')) input.serial = checkText(cell('serial'), 'serial');
      if (cell('organization')) input.organization = checkText(cell('organization'), 'organization');
      if (cell('backend_username')) input.backendUsername = checkBackendUsername(cell('backend_username'));
      const bpw = row.fields[names.indexOf('backend_password')];
      if (bpw) input.backendPassword = checkBackendPassword(Buffer.from(bpw, 'utf8'));
      out.push(input);
    } catch (err) {
      if (!(err instanceof ChargerAdminError)) throw err;
      errors.push({ line: row.line, message: err.message });
    }
  }
  if (errors.length > 0) throw new ChargerAdminError('import_invalid', `${errors.length} bad line(s); nothing was imported`, errors);
  return out;
}
