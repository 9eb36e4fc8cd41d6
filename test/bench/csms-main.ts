/**
 * Bench CSMS stand-in, run as its own process (child_process.fork): a plain `ws` server on
 * 127.0.0.1 that answers OCPP 1.6 CALLs with canned CALLRESULTs and, when asked, sends
 * CSMS-initiated calls. Deliberately not ocpp-rpc (no schema validation, no per-call promises)
 * so it is never the bottleneck of the bench.
 *
 * IPC in: {cmd:'listen'} | {cmd:'count'} | {cmd:'initiate', every} | {cmd:'stop'}.
 * IPC out: {id, ...} answers to the request with the same id.
 */
import { WebSocketServer, type WebSocket } from 'ws';

/** Request sent by the bench runner over IPC. */
export interface CsmsRequest {
  id: number;
  cmd: 'listen' | 'count' | 'initiate' | 'stop';
  /** initiate: send one CSMS-initiated call after every `every`-th answered charger call (0 = never). */
  every?: number;
}

const now = () => new Date().toISOString();
/** Canned answers by action: small and valid for OCPP 1.6. */
const ANSWERS: Record<string, string> = {
  BootNotification: JSON.stringify({ status: 'Accepted', currentTime: '2024-01-01T00:00:00.000Z', interval: 300 }),
  Heartbeat: JSON.stringify({ currentTime: '2024-01-01T00:00:00.000Z' }),
  StatusNotification: '{}',
  MeterValues: '{}',
  Authorize: JSON.stringify({ idTagInfo: { status: 'Accepted' } }),
};
/** CSMS-initiated calls a real back office sends now and then. */
const INITIATED = [
  JSON.stringify({ key: ['HeartbeatInterval', 'MeterValueSampleInterval'] }),
  JSON.stringify({ requestedMessage: 'StatusNotification', connectorId: 1 }),
];
const INITIATED_ACTIONS = ['GetConfiguration', 'TriggerMessage'];

let wss: WebSocketServer | null = null;
let open = 0;
let initiateEvery = 0;
let answered = 0;
let initiatedSent = 0;
let initiatedAnswered = 0;

function onConnection(ws: WebSocket): void {
  open++;
  let outstanding: string | null = null;
  let seq = 0;
  ws.on('close', () => open--);
  ws.on('error', () => {});
  ws.on('message', (data) => {
    const text = data.toString();
    // Only the header matters: [2,"id","Action",{...}] or [3,"id",{...}].
    const type = text.charCodeAt(1) - 48;
    const idStart = text.indexOf('"') + 1;
    const idEnd = text.indexOf('"', idStart);
    const id = text.slice(idStart, idEnd);
    if (type === 2) {
      const aStart = text.indexOf('"', idEnd + 1) + 1;
      const action = text.slice(aStart, text.indexOf('"', aStart));
      const payload = ANSWERS[action] ?? (action === 'Heartbeat' ? `{"currentTime":"${now()}"}` : '{}');
      ws.send(`[3,"${id}",${payload}]`);
      answered++;
      if (initiateEvery > 0 && answered % initiateEvery === 0 && outstanding === null) {
        const k = seq++ % INITIATED.length;
        outstanding = `c${seq}`;
        initiatedSent++;
        ws.send(`[2,"${outstanding}","${INITIATED_ACTIONS[k]}",${INITIATED[k]}]`);
      }
    } else if ((type === 3 || type === 4) && id === outstanding) {
      outstanding = null;
      initiatedAnswered++;
    }
  });
}

function reply(msg: Record<string, unknown>): void {
  process.send?.(msg);
}

process.on('message', (req: CsmsRequest) => {
  switch (req.cmd) {
    case 'listen': {
      wss = new WebSocketServer({ host: '127.0.0.1', port: 0, backlog: 4096, perMessageDeflate: false, handleProtocols: (p) => [...p][0] ?? false });
      wss.on('connection', onConnection);
      wss.on('listening', () => reply({ id: req.id, port: (wss!.address() as { port: number }).port }));
      break;
    }
    case 'count':
      reply({ id: req.id, open, answered, initiatedSent, initiatedAnswered });
      break;
    case 'initiate':
      initiateEvery = req.every ?? 0;
      answered = initiatedSent = initiatedAnswered = 0;
      reply({ id: req.id });
      break;
    case 'stop':
      for (const c of wss?.clients ?? []) c.terminate();
      wss?.close(() => {
        reply({ id: req.id });
        process.exit(0);
      });
      break;
  }
});
process.on('disconnect', () => process.exit(0));
