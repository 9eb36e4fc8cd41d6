import t from 'tap';
import { StoreError } from '../../proxy/store/errors';
import { parseRole } from '../../proxy/store/redis-replicas';

t.test('ROLE of a primary: its offset and each replica\'s acknowledged one', async (t) => {
  t.same(parseRole(['master', 3129659, [['127.0.0.1', '9001', '3129242'], ['127.0.0.1', '9002', '3129543']]]), { offset: 3129659, replicaOffsets: [3129242, 3129543] });
  t.same(parseRole(['master', 0, []]), { offset: 0, replicaOffsets: [] }, 'no replicas');
});

t.test('anything else is no proof a replica holds the write', async (t) => {
  const bad: [unknown, string][] = [
    [['slave', '127.0.0.1', 6379, 'connected', 100], 'a replica (the write went to a demoted node)'],
    [['sentinel', ['mymaster']], 'a sentinel'],
    [null, 'no reply'],
    ['master', 'not an array'],
    [['master', 'x', []], 'unreadable offset'],
    [['master', 10, [['127.0.0.1', '9001']]], 'a replica entry without an offset'],
    [['master', 10, ['127.0.0.1']], 'a replica entry that is no list'],
  ];
  for (const [reply, what] of bad) {
    const err = (() => { try { parseRole(reply); return null; } catch (e) { return e; } })();
    t.ok(err instanceof StoreError && err.reason === 'store_not_replicated', `${what}: store_not_replicated`);
  }
});
