/**
 * Finds an object key that appears twice in one object of a JSON text. `JSON.parse` keeps the last
 * of them; a CSMS's parser may keep the first. Where the proxy enforces a field of a frame it then
 * forwards byte for byte (the BootNotification serial number on Profile 3), both must mean the same.
 */

/**
 * The first key found twice in one object of `text`, or null. `text` must be valid JSON (it was
 * parsed already); keys are compared after unescaping, so `"a"` and `"\u0061"` are the same key.
 * `foldCase`: `key` and `Key` count as the same too (parsers that bind fields without case, as Go's
 * encoding/json and Json.NET do, read either).
 */
export function duplicateKeyIn(text: string, foldCase = false): string | null {
  const objects: (Set<string> | null)[] = []; // one entry per open container: the keys of an object, null for an array
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let end = i + 1;
      while (end < text.length && text.charCodeAt(end) !== 0x22) end += text.charCodeAt(end) === 0x5c /* \ */ ? 2 : 1;
      if (end >= text.length) return null; // not JSON after all: nothing to compare
      const keys = objects[objects.length - 1];
      if (expectKey && keys) {
        const parsed = JSON.parse(text.slice(i, end + 1)) as string;
        const key = foldCase ? parsed.toLowerCase() : parsed;
        if (keys.has(key)) return parsed;
        keys.add(key);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(new Set());
      expectKey = true;
    } else if (c === 0x5b /* [ */) {
      objects.push(null);
      expectKey = false;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
    } else if (c === 0x2c /* , */) {
      expectKey = objects[objects.length - 1] != null;
    }
  }
  return null;
}
