/** withoutCredentials: the backend URL as the banner and the logs print it, a user:password part masked. */
import t from 'tap';
import { withoutCredentials } from '../../proxy/serve';

t.test('masks user and password, leaves everything else', async (t) => {
  t.equal(withoutCredentials('ws://proxy:s3cret@csms.internal:9000/ocpp'), 'ws://***:***@csms.internal:9000/ocpp');
  t.equal(withoutCredentials('wss://only-user@csms/ocpp'), 'wss://***@csms/ocpp');
  t.equal(withoutCredentials('ws://127.0.0.1:9000/ocpp'), 'ws://127.0.0.1:9000/ocpp', 'no credentials: unchanged');
  t.equal(withoutCredentials('not a url'), 'not a url');
});
