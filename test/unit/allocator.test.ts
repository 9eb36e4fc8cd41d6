/**
 * allocator.ts reads the C allocator off a process memory map: a preloaded jemalloc/tcmalloc/mimalloc
 * wins over libc, glibc is named by libc.so.6, anything else is "unknown". The e2e test
 * (test/e2e/allocator.test.ts) checks the real process both ways.
 */
import t from 'tap';
import { allocatorFromMaps } from '../../proxy/allocator';

const line = (file: string) => `7f0c2a400000-7f0c2a428000 r--p 00000000 08:01 1234 ${file}`;
const glibc = [line('/usr/bin/node'), line('/usr/lib/x86_64-linux-gnu/libc.so.6'), line('[heap]')].join('\n');

t.equal(allocatorFromMaps(glibc), 'glibc', 'libc.so.6 alone: glibc malloc');
t.equal(allocatorFromMaps(`${line('/usr/lib/x86_64-linux-gnu/libjemalloc.so.2')}\n${glibc}`), 'jemalloc', 'jemalloc preloaded');
t.equal(allocatorFromMaps(`${glibc}\n${line('/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4.5.9')}`), 'tcmalloc', 'tcmalloc (minimal) preloaded');
t.equal(allocatorFromMaps(`${line('/usr/lib/x86_64-linux-gnu/libmimalloc.so.2.0')}\n${glibc}`), 'mimalloc', 'mimalloc preloaded');
t.equal(allocatorFromMaps(line('/lib/ld-musl-x86_64.so.1')), 'unknown', 'musl: unknown');
t.equal(allocatorFromMaps(''), 'unknown', 'no map: unknown');
t.equal(allocatorFromMaps(line('/opt/app/not-libjemalloc-notes.txt')), 'unknown', 'a file merely named like it is not a shared object');
