/**
 * RelayTally: per-frame counts kept in plain arrays reach prom-client's counter and histogram at
 * scrape time, exactly once, alongside anything observed through prom-client directly.
 */
import t from 'tap';
import { Histogram, Registry } from 'prom-client';
import { ProxyMetrics, RELAY_BUCKETS } from '../../proxy/metrics';
import { checkHistogramShape } from '../../proxy/metrics-tally';

/** The value of one exposition line, or undefined when the series is absent. */
function valueOf(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

const FRAMES = 'ocpp_proxy_frames_relayed_total';
const LATENCY = 'ocpp_proxy_relay_latency_seconds';

t.test('relayed frames are counted by direction and message type, once per scrape', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  let text = await m.metricsText();
  t.notMatch(text, /ocpp_proxy_frames_relayed_total\{/, 'no frame series before any frame');
  t.notMatch(text, /ocpp_proxy_relay_latency_seconds_count\{/, 'no latency series before any frame');

  for (let i = 0; i < 3; i++) m.relayTally.record('charger_to_csms', 2, 0.00003);
  m.relayTally.record('csms_to_charger', 3, 0.0004);
  m.relayTally.record('charger_to_csms', 6, 0.00001);
  text = await m.metricsText();
  t.equal(valueOf(text, `${FRAMES}{direction="charger_to_csms",message_type="call"}`), 3);
  t.equal(valueOf(text, `${FRAMES}{direction="csms_to_charger",message_type="callresult"}`), 1);
  t.equal(valueOf(text, `${FRAMES}{direction="charger_to_csms",message_type="send"}`), 1);

  text = await m.metricsText();
  t.equal(valueOf(text, `${FRAMES}{direction="charger_to_csms",message_type="call"}`), 3, 'a second scrape adds nothing');

  m.relayTally.record('charger_to_csms', 2, 0.00003);
  m.framesRelayed.inc({ direction: 'charger_to_csms', message_type: 'call' }, 10);
  text = await m.metricsText();
  t.equal(valueOf(text, `${FRAMES}{direction="charger_to_csms",message_type="call"}`), 14, 'tally and direct inc add up');
});

t.test('latencies land in the right buckets, with sum and count', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  const seconds = [0.00001, 0.00002, 0.00003, 0.0003, 0.003, 0.3]; // 0.3 s is beyond the last bound
  for (const s of seconds) m.relayTally.record('charger_to_csms', 2, s);
  m.relayTally.record('csms_to_charger', 3, 0.00004);
  const text = await m.metricsText();
  const bucket = (dir: string, le: number | string) => valueOf(text, `${LATENCY}_bucket{le="${le}",direction="${dir}"}`);
  for (const le of RELAY_BUCKETS) {
    t.equal(bucket('charger_to_csms', le), seconds.filter((s) => s <= le).length, `le=${le} is cumulative`);
  }
  t.equal(bucket('charger_to_csms', '+Inf'), seconds.length);
  t.equal(valueOf(text, `${LATENCY}_count{direction="charger_to_csms"}`), seconds.length);
  t.ok(Math.abs(valueOf(text, `${LATENCY}_sum{direction="charger_to_csms"}`)! - seconds.reduce((a, b) => a + b)) < 1e-12, 'sum');
  t.equal(bucket('csms_to_charger', 0.00005), 1);
  t.equal(bucket('csms_to_charger', 0.00002), 0);

  const again = await m.metricsText();
  t.equal(valueOf(again, `${LATENCY}_count{direction="charger_to_csms"}`), seconds.length, 'a second scrape adds nothing');

  m.relayLatency.observe({ direction: 'charger_to_csms' }, 0.00001);
  m.relayTally.record('charger_to_csms', 2, 0.00001);
  const mixed = await m.metricsText();
  t.equal(valueOf(mixed, `${LATENCY}_bucket{le="0.00002",direction="charger_to_csms"}`), 4, 'observe and tally add up');
  t.equal(valueOf(mixed, `${LATENCY}_count{direction="charger_to_csms"}`), seconds.length + 2);
});

t.test('after a registry reset the tally starts new series instead of failing', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  m.relayTally.record('csms_to_charger', 3, 0.0001);
  await m.metricsText();
  m.registry.resetMetrics();
  m.relayTally.record('csms_to_charger', 3, 0.0001);
  const text = await m.metricsText();
  t.equal(valueOf(text, `${LATENCY}_count{direction="csms_to_charger"}`), 1);
  t.equal(valueOf(text, `${FRAMES}{direction="csms_to_charger",message_type="callresult"}`), 1);
});

t.test('a prom-client that keeps histogram series differently is refused at start-up', async (t) => {
  const fresh = () => new Histogram({ name: 'h', help: 'h', labelNames: ['direction'], buckets: RELAY_BUCKETS, registers: [new Registry()] });
  t.doesNotThrow(() => checkHistogramShape(fresh(), RELAY_BUCKETS), 'this prom-client is understood');
  const other = fresh();
  Object.defineProperty(other, 'hashMap', { get: () => new Map(), set: () => undefined });
  t.throws(() => checkHistogramShape(other, RELAY_BUCKETS), /unexpected shape/);
  t.throws(() => checkHistogramShape(fresh(), [0.123]), /unexpected shape/, 'buckets that are not where expected');
  const h = fresh();
  checkHistogramShape(h, RELAY_BUCKETS);
  t.same((await h.get()).values, [], 'the check leaves no series behind');
});

t.test('a frame of no OCPP-J type is counted in neither metric', async (t) => {
  const m = new ProxyMetrics({ collectDefault: false });
  m.relayTally.record('charger_to_csms', 9, 0.00001);
  m.relayTally.record('charger_to_csms', 1, 0.00001);
  const text = await m.metricsText();
  t.notMatch(text, /ocpp_proxy_frames_relayed_total\{/);
  t.notMatch(text, /ocpp_proxy_relay_latency_seconds_count\{/);
});
