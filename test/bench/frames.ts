/**
 * Realistic OCPP 1.6 frames for the steady-relay scenario: a charger sends MeterValues most often
 * (a four-measurand sample, ~450 bytes), then Heartbeat and StatusNotification; the CSMS now and then
 * sends GetConfiguration / TriggerMessage, answered with INITIATED_ANSWER.
 */

const METER = JSON.stringify({
  connectorId: 1,
  transactionId: 48213,
  meterValue: [{
    timestamp: '2024-05-01T12:00:00.000Z',
    sampledValue: [
      { value: '123456.7', context: 'Sample.Periodic', measurand: 'Energy.Active.Import.Register', location: 'Outlet', unit: 'Wh' },
      { value: '7210', context: 'Sample.Periodic', measurand: 'Power.Active.Import', location: 'Outlet', unit: 'W' },
      { value: '230.4', context: 'Sample.Periodic', measurand: 'Voltage', phase: 'L1-N', location: 'Outlet', unit: 'V' },
      { value: '31.3', context: 'Sample.Periodic', measurand: 'Current.Import', phase: 'L1', location: 'Outlet', unit: 'A' },
    ],
  }],
});
const STATUS = JSON.stringify({ connectorId: 1, errorCode: 'NoError', status: 'Charging', timestamp: '2024-05-01T12:00:00.000Z' });

/** A charger's answer to a CSMS-initiated GetConfiguration / TriggerMessage (valid enough for both). */
export const INITIATED_ANSWER = JSON.stringify({ status: 'Accepted', configurationKey: [{ key: 'HeartbeatInterval', readonly: false, value: '300' }] });

/** The `seq`-th call of a charger: 6 in 10 MeterValues, 2 Heartbeat, 2 StatusNotification. */
export function frameFor(seq: number, id: string): string {
  const k = seq % 10;
  if (k < 6) return `[2,"${id}","MeterValues",${METER}]`;
  if (k < 8) return `[2,"${id}","Heartbeat",{}]`;
  return `[2,"${id}","StatusNotification",${STATUS}]`;
}

/** A charger's periodic call by action (the soak's steady load). */
export function frameOf(action: 'Heartbeat' | 'MeterValues' | 'StatusNotification', id: string): string {
  const payload = action === 'MeterValues' ? METER : action === 'StatusNotification' ? STATUS : '{}';
  return `[2,"${id}","${action}",${payload}]`;
}
