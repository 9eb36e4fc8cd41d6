import { once } from 'node:events';
import type { Server } from 'node:net';

/** A listener that could not bind, with the setting that named its address. */
export class ListenError extends Error {
  readonly code: string;
  constructor(readonly setting: string, readonly address: string, cause: NodeJS.ErrnoException) {
    const why = cause.code === 'EADDRINUSE' ? 'the address is in use (by another process, or by another of this proxy\'s listeners)'
      : cause.code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
      : cause.code === 'EADDRNOTAVAIL' ? 'no network interface of this host has that address'
      : cause.message;
    super(`"${setting}" ${address}: ${why}`);
    this.name = 'ListenError';
    this.code = cause.code ?? 'error';
  }
}

/** Binds `server` to `at`; a failure names the setting, so an operator knows which address to change. */
export async function listenAt(server: Server, at: { host: string; port: number }, setting: string): Promise<void> {
  server.listen(at.port, at.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const host = at.host.includes(':') ? `[${at.host}]` : at.host;
    throw new ListenError(setting, `${host}:${at.port}`, err as NodeJS.ErrnoException);
  }
}
