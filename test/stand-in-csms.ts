/**
 * `npm run csms`: a stand-in for the legacy CSMS, to try the proxy without one (README, Quick
 * start). It is the test suite's CSMS (test/helpers/csms.ts) on ws://127.0.0.1:9000/ocpp, accepting
 * every charger and printing each frame it receives and sends. Not a CSMS: it answers
 * BootNotification, Heartbeat, StatusNotification, MeterValues and DataTransfer, and nothing else.
 *
 * Options: --port N (default 9000; 0 picks a free port). Stops on Ctrl-C / SIGTERM.
 */
import { parseArgs } from 'node:util';
import { startLegacyCsms } from './helpers/csms';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { port: { type: 'string', default: '9000' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got "${values.port}"`);
  const csms = await startLegacyCsms({
    port: port === 0 ? undefined : port,
    protocols: ['ocpp1.6', 'ocpp2.0', 'ocpp2.0.1', 'ocpp2.1'], // every subprotocol the proxy relays by default
    record: false, // it may run for days: print frames, keep none (nor any Basic password)
    onClient: (client) => {
      console.log(`charger ${client.identity} connected (${client.protocol})`);
      client.on('message', ({ message, outbound }: { message: Buffer | string; outbound: boolean }) =>
        console.log(`${outbound ? '->' : '<-'} ${client.identity} ${message.toString()}`));
      client.on('close', () => console.log(`charger ${client.identity} disconnected`));
    },
  });
  console.log(`stand-in CSMS listening on ${csms.url} (the proxy's default backend when on port 9000)`);
  const stop = () => void csms.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  console.error(`stand-in CSMS: ${(err as Error).message}`);
  process.exit(1);
});
