import t from 'tap';
import { CallTable } from '../../proxy/call-table';

t.test('one call at a time, as OCPP-J sends them', async (t) => {
  const table = new CallTable<number>();
  t.equal(table.size, 0);
  t.equal(table.oldestId(), undefined);
  for (let i = 0; i < 3; i++) {
    table.set(`m${i}`, i);
    t.equal(table.size, 1);
    t.ok(table.has(`m${i}`));
    t.equal(table.get(`m${i}`), i);
    t.equal(table.oldestId(), `m${i}`);
    t.ok(table.delete(`m${i}`));
    t.notOk(table.delete(`m${i}`), 'gone');
    t.notOk(table.has(`m${i}`));
    t.equal(table.get(`m${i}`), undefined);
  }
});

t.test('several outstanding: the order sent is kept, whichever is answered first', async (t) => {
  const table = new CallTable<string>();
  table.set('a', 'A');
  table.set('b', 'B');
  table.set('c', 'C');
  t.equal(table.size, 3);
  const order = () => { const seen: string[] = []; table.forEachValue((v) => seen.push(v)); return seen.join(''); };
  t.equal(order(), 'ABC');
  t.equal(table.oldestId(), 'a');
  table.delete('a');
  t.equal(table.oldestId(), 'b', 'the next oldest after the first is answered');
  table.set('d', 'D');
  t.equal(order(), 'BCD', 'a call sent while others wait goes after them, not into the freed first place');
  t.equal(table.oldestId(), 'b');
  table.delete('c');
  table.delete('b');
  t.equal(table.oldestId(), 'd');
  table.delete('d');
  t.equal(table.size, 0);
  table.set('e', 'E');
  t.equal(table.oldestId(), 'e');
  t.equal(order(), 'E');
});

t.test('an id set again keeps its place and takes the new value', async (t) => {
  const table = new CallTable<number>();
  table.set('a', 1);
  table.set('b', 2);
  table.set('a', 3);
  table.set('b', 4);
  t.equal(table.size, 2);
  t.equal(table.get('a'), 3);
  t.equal(table.get('b'), 4);
  t.equal(table.oldestId(), 'a');
  table.delete('a');
  table.set('b', 5);
  t.equal(table.size, 1, 'not added twice once the first place is free');
  t.equal(table.get('b'), 5);
});

t.test('matches a Map over random operations', async (t) => {
  let seed = 42;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  const table = new CallTable<number>();
  const model = new Map<string, number>();
  for (let step = 0; step < 20_000; step++) {
    const id = `id${rand(6)}`;
    const op = rand(3);
    let same = true;
    if (op === 0) { table.set(id, step); model.set(id, step); }
    else if (op === 1) same = table.delete(id) === model.delete(id);
    else same = table.get(id) === model.get(id);
    if (!same || table.size !== model.size || table.oldestId() !== model.keys().next().value) {
      t.fail(`diverged at step ${step} (${['set', 'delete', 'get'][op]} ${id})`);
      return;
    }
  }
  t.pass('20,000 random operations agree');
  const values: number[] = [];
  table.forEachValue((v) => values.push(v));
  t.same(values, [...model.values()], 'same values in the same order');
});
