/** The soak's reading of /metrics: whole metrics are summed over their series, labelled ones read one series. */
import t from 'tap';
import { parseProm } from '../bench/soak-report';

t.test('parseProm sums a bare metric and picks a labelled series', async (t) => {
  const text = [
    '# TYPE nodejs_heap_space_size_total_bytes gauge',
    'nodejs_heap_space_size_total_bytes{space="new"} 16777216',
    'nodejs_heap_space_size_total_bytes{space="old"} 52428800',
    'nodejs_heap_space_size_total_bytes{space="code"} 2097152',
    '# TYPE ocpp_proxy_sessions_active gauge',
    'ocpp_proxy_sessions_active{profile="2",ocpp_version="ocpp1.6"} 1500',
    'ocpp_proxy_sessions_active{profile="3",ocpp_version="ocpp2.0.1"} 500',
    'process_resident_memory_bytes 183500800',
  ].join('\n');
  const v = parseProm(text);
  t.equal(v.newSpaceMiB, 16, 'new space alone');
  t.equal(v.oldSpaceMiB, 50, 'old space alone');
  t.equal(v.codeSpaceMiB, 2, 'code space alone');
  t.equal(v.sessions, 2000, 'sessions summed over their labels');
  t.equal(v.rssMiB, 175);
  t.equal(v.heapTotalMiB, null, 'absent metric reads null');
});
