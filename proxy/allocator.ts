/**
 * Which C allocator this process runs on. It matters: after thousands of sessions close at once (a
 * drain, a network blip), glibc's malloc is left with fragmented free lists and spends a large share
 * of the relay's CPU searching them (measured: up to a third of the process's CPU in `_int_malloc`).
 * jemalloc does not degrade that way. The container image preloads it; elsewhere the operator can
 * (`LD_PRELOAD=.../libjemalloc.so.2`). The proxy reports what it found at start-up and in
 * `ocpp_proxy_build_info`, so a deployment without it is visible.
 */
import { readFileSync } from 'node:fs';

/** jemalloc's settings in the container image (Dockerfile): background threads purge freed pages (README, "Memory allocator"). */
export const JEMALLOC_MALLOC_CONF = 'background_thread:true,dirty_decay_ms:1000';

export type Allocator = 'jemalloc' | 'tcmalloc' | 'mimalloc' | 'glibc' | 'unknown';

/** Shared objects whose presence in the process's memory map names the allocator. */
const PRELOADABLE: readonly [Allocator, RegExp][] = [
  ['jemalloc', /\/libjemalloc[^/]*\.so/],
  ['tcmalloc', /\/libtcmalloc[^/]*\.so/],
  ['mimalloc', /\/libmimalloc[^/]*\.so/],
];

/**
 * The allocator named by a `/proc/<pid>/maps` text: a preloaded one if mapped, else glibc's if libc
 * is glibc, else "unknown" (musl, or no map to read).
 */
export function allocatorFromMaps(maps: string): Allocator {
  for (const [name, pattern] of PRELOADABLE) if (pattern.test(maps)) return name;
  return /\/libc\.so\.6\b/.test(maps) ? 'glibc' : 'unknown';
}

/** This process's allocator ("unknown" where there is no /proc, e.g. macOS). */
export function currentAllocator(): Allocator {
  try {
    return allocatorFromMaps(readFileSync('/proc/self/maps', 'utf8'));
  } catch {
    return 'unknown';
  }
}
