/**
 * Node options the proxy runs with: the container image's entrypoint, `npm start` and the bench pass
 * them (V8 reads them only at start-up, so the proxy cannot set them itself), and the proxy says at
 * start-up which of them it was started without.
 *
 * `--max-semi-space-size=4`: while a reconnect storm allocates, V8 grows its young generation to its
 * largest size (two 16 MiB semi-spaces on 64-bit) and gives the memory back only when its memory
 * reducer runs, about 45 s later. A proxy's garbage is short-lived frames and handshake state, so a
 * 4 MiB nursery costs it nothing measurable: right after 9,900 P2 sessions connected, RSS 378 MiB
 * instead of 398, at 1.78 against 1.73 ms of CPU per admission, and the same relay throughput.
 */
export const NODE_RUNTIME_OPTIONS: readonly string[] = ['--max-semi-space-size=4'];

/**
 * Those of {@link NODE_RUNTIME_OPTIONS} that neither the command line nor NODE_OPTIONS names. One
 * given with another value counts as given: that is the operator's choice.
 */
export function missingRuntimeOptions(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/)].map(optionName));
  return NODE_RUNTIME_OPTIONS.filter((option) => !given.has(optionName(option)));
}

/** `--max-semi-space-size` of `--max-semi-space-size=4`; V8 also accepts underscores for dashes. */
function optionName(option: string): string {
  return option.split('=')[0]!.replace(/_/g, '-');
}
