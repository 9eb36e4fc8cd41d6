/**
 * A small RFC 4180 CSV reader for `chargers import`: comma-separated, fields optionally in double
 * quotes (`""` is a literal quote, quoted fields may span lines), LF or CRLF line ends, a leading
 * UTF-8 BOM ignored, blank lines skipped. Every row carries the line number it starts on, so
 * errors can point at the operator's file. Written here rather than pulled in as a dependency
 * because the import needs only this much and must report line numbers exactly.
 */

/** One parsed row and the 1-based line of the file it starts on. */
export interface CsvRow {
  line: number;
  fields: string[];
}

/** Malformed CSV (e.g. an unterminated quote); `line` is where the problem starts. */
export class CsvError extends Error {
  readonly reason = 'csv_invalid';
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'CsvError';
  }
}

/**
 * Splits CSV text into rows of fields.
 * @throws CsvError for a quote that is never closed or text directly after a closing quote.
 */
export function parseCsv(text: string): CsvRow[] {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const rows: CsvRow[] = [];
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quotedRow = false;
    for (;;) {
      if (src[i] === '"' && field === '') {
        // Quoted field: read to the closing quote, doubling "" to ".
        quotedRow = true;
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= src.length) throw new CsvError('unterminated quoted field', quoteLine);
          const c = src[i]!;
          if (c === '"') {
            if (src[i + 1] === '"') { field += '"'; i += 2; continue; }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < src.length && src[i] !== ',' && src[i] !== '\n' && !(src[i] === '\r' && src[i + 1] === '\n')) {
          throw new CsvError('unexpected text after a closing quote', line);
        }
      }
      const c = src[i];
      if (c === undefined) { fields.push(field); break; }
      if (c === ',') { fields.push(field); field = ''; i++; continue; }
      if (c === '\n' || (c === '\r' && src[i + 1] === '\n')) {
        fields.push(field);
        i += c === '\r' ? 2 : 1;
        line++;
        break;
      }
      if (c === '"') throw new CsvError('a quote inside an unquoted field (quote the whole field)', line);
      field += c;
      i++;
    }
    const blank = !quotedRow && fields.length === 1 && fields[0]!.trim() === '';
    if (!blank) rows.push({ line: start, fields });
  }
  return rows;
}
