import t from 'tap';
import { closestName } from '../../proxy/did-you-mean';
import { CONFIG_KEYS, envName, flagName } from '../../proxy/config-keys';

const flags = CONFIG_KEYS.map((d) => flagName(d.key));
const keys = CONFIG_KEYS.map((d) => d.key);
const envs = CONFIG_KEYS.map((d) => envName(d.key));

t.test('a typo gets the name it most likely meant', async (t) => {
  t.equal(closestName('bakend', flags), 'backend', 'a letter left out');
  t.equal(closestName('lissen', flags), 'listen', 'a letter wrong');
  t.equal(closestName('admin-lsiten', flags), 'admin-listen', 'two letters swapped');
  t.equal(closestName('maxsessions', keys), 'maxSessions', 'case does not count');
  t.equal(closestName('OCPP_PROXY_BAKEND', envs), 'OCPP_PROXY_BACKEND', 'environment names');
});

t.test('nothing is suggested when nothing is near', async (t) => {
  t.equal(closestName('frobnicate', flags), null);
  t.equal(closestName('x', flags), null, 'a one-letter name is never "near" a long one');
  t.equal(closestName('backend', []), null, 'no candidates');
});
