/**
 * The legacy CSMS cannot change, through the proxy, what the proxy manages on the charger: a password
 * it set would be one the store never saw, and the charger, applying it, would be locked out. Such
 * calls are answered Rejected to the CSMS and never reach the charger; every other call passes.
 */
import t, { type Test } from 'tap';
import { startLegacyCsms, type LegacyCsms } from '../helpers/csms';
import { openRawCharger } from '../helpers/login';
import { sleep, waitFor } from '../helpers/net';
import { seedCharger, startTestProxy, type TestProxy } from '../helpers/proxy';
import { startRawCsms } from '../helpers/raw-csms';
import { SimStation } from '../helpers/station';

const PASSWORD = 'guard-test-password-1';
const NEW_PASSWORD = 'set-by-legacy-csms';

async function rig(t: Test, flags: Record<string, unknown> = {}): Promise<{ csms: LegacyCsms; proxy: TestProxy }> {
  const csms = await startLegacyCsms();
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false', ...flags });
  t.teardown(() => proxy.stop());
  return { csms, proxy };
}

async function station(t: Test, proxy: TestProxy, identity: string, protocol: 'ocpp1.6' | 'ocpp2.0.1' | 'ocpp2.1'): Promise<SimStation> {
  await seedCharger(proxy, { identity, password: PASSWORD });
  const s = new SimStation({ identity, endpoint: proxy.tlsUrl, protocol, password: PASSWORD, ca: proxy.caPem });
  t.teardown(() => s.stop());
  await s.connect();
  return s;
}

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');

t.test('OCPP 1.6: ChangeConfiguration of AuthorizationKey or SecurityProfile is answered Rejected, others pass', async (t) => {
  const { csms, proxy } = await rig(t);
  const s = await station(t, proxy, 'GUARD-16', 'ocpp1.6');
  const client = csms.clients.get('GUARD-16');
  for (const key of ['AuthorizationKey', 'authorizationkey', 'SecurityProfile']) {
    t.same(await client.call('ChangeConfiguration', { key, value: key === 'SecurityProfile' ? '0' : hex(NEW_PASSWORD) }), { status: 'Rejected' }, `${key}: Rejected to the CSMS`);
  }
  t.same(s.keyChanges, [], 'the charger never got a password from the CSMS');
  t.same(s.otherCalls, [], 'nor a profile');
  t.same(await client.call('ChangeConfiguration', { key: 'HeartbeatInterval', value: '60' }), { status: 'Accepted' }, 'another key reaches the charger');
  t.same(s.otherCalls.map((c) => c.params.key), ['HeartbeatInterval']);

  const refused = proxy.logs.filter((l) => l.event === 'csms_call_refused');
  t.same(refused.map((l) => l.names), [['AuthorizationKey'], ['authorizationkey'], ['SecurityProfile']], 'each refusal logged, with the key');
  t.notOk(JSON.stringify(proxy.logs).includes(hex(NEW_PASSWORD)), 'never the value');
  await waitFor(async () => (await proxy.credentials.store.readAudit(20)).some((e) => e.type === 'csms_call_refused'), 'audited');
  const audit = (await proxy.credentials.store.readAudit(20)).filter((e) => e.type === 'csms_call_refused');
  t.match(audit[0], { identity: 'GUARD-16', detail: { action: 'ChangeConfiguration' } });
  t.notOk(JSON.stringify(audit).includes(hex(NEW_PASSWORD)), 'the audit holds no value either');

  // The charger still gets in with the password the store holds.
  s.client.close({ code: 1000 });
  await waitFor(() => !s.client, 'disconnected');
  await s.connect();
  t.equal(s.refusals.length, 0, 'and logs in again with its own password');
});

t.test('OCPP 2.0.1: SetVariables naming a managed variable is rejected whole; SetNetworkProfile too; others pass', async (t) => {
  const { csms, proxy } = await rig(t);
  const s = await station(t, proxy, 'GUARD-201', 'ocpp2.0.1');
  const client = csms.clients.get('GUARD-201');
  const item = (component: string, variable: string, attributeValue: string) => ({ component: { name: component }, variable: { name: variable }, attributeValue });
  const answer = await client.call('SetVariables', { setVariableData: [item('OCPPCommCtrlr', 'HeartbeatInterval', '60'), item('SecurityCtrlr', 'BasicAuthPassword', NEW_PASSWORD)] });
  t.same(answer.setVariableResult.map((r: any) => [r.component.name, r.variable.name, r.attributeStatus, r.attributeStatusInfo.reasonCode]),
    [['OCPPCommCtrlr', 'HeartbeatInterval', 'Rejected', 'ManagedByProxy'], ['SecurityCtrlr', 'BasicAuthPassword', 'Rejected', 'ManagedByProxy']], 'every item Rejected, as the call is not forwarded');
  for (const [component, variable] of [['SecurityCtrlr', 'Identity'], ['SecurityCtrlr', 'SecurityProfile'], ['OCPPCommCtrlr', 'NetworkConfigurationPriority']] as const) {
    const r = await client.call('SetVariables', { setVariableData: [item(component, variable, '1')] });
    t.equal(r.setVariableResult[0].attributeStatus, 'Rejected', `${component}.${variable} Rejected`);
  }
  const network = await client.call('SetNetworkProfile', { configurationSlot: 2, connectionData: { ocppVersion: 'OCPP20', ocppTransport: 'JSON', ocppCsmsUrl: 'wss://elsewhere.example/ocpp', messageTimeout: 30, securityProfile: 1, ocppInterface: 'Wired0' } });
  t.match(network, { status: 'Rejected', statusInfo: { reasonCode: 'ManagedByProxy' } }, 'SetNetworkProfile Rejected');
  t.same(s.keyChanges, [], 'the charger never got a password from the CSMS');
  t.same(s.otherCalls, [], 'nor any of those calls');
  const passed = await client.call('SetVariables', { setVariableData: [item('OCPPCommCtrlr', 'HeartbeatInterval', '60')] });
  t.equal(passed.setVariableResult[0].attributeStatus, 'Accepted', 'a SetVariables of other variables reaches the charger');
  t.same(s.otherCalls.map((c) => c.action), ['SetVariables']);
});

t.test('a guarded call repeating a key is refused; a numeric id is answered as the CSMS wrote it', async (t) => {
  const answers: string[] = [];
  const csms = await startRawCsms({ onOpen: (ws) => {
    ws.on('message', (d) => answers.push(d.toString()));
    ws.send('[2,"dup-1","ChangeConfiguration",{"key":"AuthorizationKey","key":"HeartbeatInterval","value":"60"}]');
    ws.send('[2,7,"ChangeConfiguration",{"key":"AuthorizationKey","value":"0011"}]');
    ws.send('[2,"dup-2","ChangeConfiguration",{"key":"HeartbeatInterval","Key":"AuthorizationKey","value":"0011"}]'); // Go and .NET bind either
    ws.send('[2,"ok-1","ChangeConfiguration",{"key":"HeartbeatInterval","value":"60"}]');
  } });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'GUARD-RAW', password: PASSWORD });
  const { got } = await openRawCharger(t, proxy, 'GUARD-RAW', PASSWORD);
  await waitFor(() => answers.length >= 3 && got.length >= 1, 'answers and the passed call');
  await sleep(100);
  t.same(answers, ['[3,"dup-1",{"status":"Rejected"}]', '[3,7,{"status":"Rejected"}]', '[3,"dup-2",{"status":"Rejected"}]'], 'all refused (a key twice, also in another case), each with its id as sent');
  t.same(got, ['[2,"ok-1","ChangeConfiguration",{"key":"HeartbeatInterval","value":"60"}]'], 'only the harmless call reached the charger, byte for byte');
  t.match(proxy.logs.find((l) => l.event === 'csms_call_refused'), { names: ['duplicate key key'] });
});

t.test('OCPP 2.0.1, written by hand: keys twice, the case of names, the organisation, a malformed call', async (t) => {
  const answers: unknown[][] = [];
  const item = (component: string, variable: string, extra = '') => `{"component":{"name":"${component}"},"variable":{"name":"${variable}"${extra}},"attributeValue":"x"}`;
  const sent = [
    `[2,"v1","SetVariables",{"setVariableData":[${item('SecurityCtrlr', 'BasicAuthPassword')}],"setVariableData":0}]`,
    `[2,"v2","SetVariables",{"setVariableData":[${item('OCPPCommCtrlr', 'HeartbeatInterval', ',"Name":"BasicAuthPassword"')}]}]`,
    `[2,"v3","SetVariables",{"setVariableData":[${item('SecurityCtrlr', 'OrganizationName')}]}]`,
    `[2,"v4","SetVariables",{"setVariableData":[${item('securityctrlr', 'basicauthpassword')}]}]`,
    `[2,"ok","SetVariables",{"setVariableData":[${item('OCPPCommCtrlr', 'HeartbeatInterval')}]}]`,
  ];
  const csms = await startRawCsms({ protocols: ['ocpp2.0.1'], onOpen: (ws) => {
    ws.on('message', (d) => answers.push(JSON.parse(d.toString()) as unknown[]));
    for (const f of sent) ws.send(f);
  } });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'GUARD-RAW2', password: PASSWORD });
  const { got } = await openRawCharger(t, proxy, 'GUARD-RAW2', PASSWORD, 'ocpp2.0.1');
  await waitFor(() => answers.length >= 4 && got.length >= 1, 'answers and the passed call');
  await sleep(100);
  t.match(answers[0], [4, 'v1', 'FormatViolation'], 'setVariableData twice (the last one not even a list): a CALLERROR, never forwarded');
  for (const [i, id] of [[1, 'v2'], [2, 'v3'], [3, 'v4']] as const) {
    t.match(answers[i], [3, id, { setVariableResult: [{ attributeStatus: 'Rejected', attributeStatusInfo: { reasonCode: 'ManagedByProxy' } }] }], `${id} Rejected`);
  }
  t.same(got, [sent[4]], 'only the harmless call reached the charger');
  const lines = proxy.logs.filter((l) => l.event === 'csms_call_refused');
  t.equal(lines.length, 4, 'each refusal logged (a few a minute at most)');
  await waitFor(async () => (await proxy.credentials.store.readAudit(50)).some((e) => e.type === 'csms_call_refused'), 'audited');
  t.equal((await proxy.credentials.store.readAudit(50)).filter((e) => e.type === 'csms_call_refused').length, 1, 'audited once per session and action');
});

t.test('guardCsmsCalls off: the CSMS\'s password change reaches the charger', async (t) => {
  const { csms, proxy } = await rig(t, { guardCsmsCalls: 'false' });
  const s = await station(t, proxy, 'GUARD-OFF', 'ocpp1.6');
  t.same(await csms.clients.get('GUARD-OFF').call('ChangeConfiguration', { key: 'AuthorizationKey', value: hex(NEW_PASSWORD) }), { status: 'Accepted' });
  t.same(s.keyChanges.map((k) => k.password), [NEW_PASSWORD], 'forwarded, as the operator chose');
});

t.test('OCPP 2.1: a CALLRESULTERROR the CSMS sends to the proxy\'s own answer stays with the proxy', async (t) => {
  const answers: string[] = [];
  let csmsWs: any = null;
  const csms = await startRawCsms({ protocols: ['ocpp2.1'], onOpen: (ws) => {
    csmsWs = ws;
    ws.on('message', (d) => answers.push(d.toString()));
    ws.send('[2,"g1","SetVariables",{"setVariableData":[{"component":{"name":"SecurityCtrlr"},"variable":{"name":"BasicAuthPassword"},"attributeValue":"set-by-the-legacy-csms"}]}]');
  } });
  t.teardown(() => csms.stop());
  const proxy = await startTestProxy({ backend: csms.url, rotation: 'false' });
  t.teardown(() => proxy.stop());
  await seedCharger(proxy, { identity: 'GUARD-21-ERR', password: PASSWORD });
  const { ws, got } = await openRawCharger(t, proxy, 'GUARD-21-ERR', PASSWORD, 'ocpp2.1');
  await waitFor(() => answers.some((a) => a.startsWith('[3,"g1"')), 'the proxy answered Rejected');
  // The CSMS refuses that answer (2.1 lets the receiver of a CALLRESULT do so): not the charger's business.
  csmsWs.send('[5,"g1","FormatViolation","not what we expected",{}]');
  // A result the charger did send may still be refused, and that one reaches the charger.
  csmsWs.send('[2,"c1","GetVariables",{"getVariableData":[{"component":{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"}}]}]');
  await waitFor(() => got.some((f) => f.startsWith('[2,"c1"')), 'the harmless call reached the charger');
  ws.send('[3,"c1",{"getVariableResult":[]}]');
  await waitFor(() => answers.some((a) => a.startsWith('[3,"c1"')), 'the charger\'s answer at the CSMS');
  csmsWs.send('[5,"c1","FormatViolation","empty",{}]');
  await waitFor(() => got.some((f) => f.startsWith('[5,"c1"')), 'the CALLRESULTERROR to the charger\'s own result relayed');
  t.notOk(got.some((f) => f.startsWith('[5,"g1"')), 'the one to the proxy\'s answer was not');
  t.match(proxy.logs.find((l) => l.event === 'own_answer_refused'), { by: 'csms', id: 'g1' }, 'logged');
  t.notOk(proxy.logs.some((l) => l.event === 'frame_refused'), 'and not taken for a stray answer');
});
