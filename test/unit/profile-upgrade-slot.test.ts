/** 2.x profile upgrades: which configuration slots a (re)try writes its network profile into, in order. */
import t from 'tap';
import { slotCandidates } from '../../policies/interceptors/profile-upgrade';
import { statusWithReason } from '../../policies/interceptors/profile-upgrade-messages';

t.test('a retry reuses the slot of the attempt before while the charger lists it; otherwise the lowest free one, then the next after the highest', async (t) => {
  t.same(slotCandidates([0], undefined), [1], 'slot 0 in use: 1 (the lowest free and the next after the highest)');
  t.same(slotCandidates([1], undefined), [2], 'slot 1 in use: 2');
  t.same(slotCandidates([2], undefined), [1, 3], 'only slot 2 left after an earlier upgrade (a two-slot charger allows 1 and 2): 1 first, then 3');
  t.same(slotCandidates([1, 0], 1), [1], 'our slot first in the list (the charger fell back but kept it): reused, not a new one');
  t.same(slotCandidates([0, 1], 1), [1], 'our slot listed after the one in use: reused');
  t.same(slotCandidates([0, 2], 1), [1, 3], 'our slot no longer listed (the charger dropped it): a free one');
  t.same(slotCandidates([3, 7, 5], undefined), [1, 8]);
  t.same(slotCandidates([1, 2, 3], undefined), [4]);
});

t.test('a refusal keeps the charger\'s reason code, and only a plain one', async (t) => {
  t.equal(statusWithReason({ kind: 'result', payload: { status: 'Rejected', statusInfo: { reasonCode: 'InvalidConfSlot' } } } as any), 'Rejected:InvalidConfSlot');
  t.equal(statusWithReason({ kind: 'result', payload: { setVariableResult: [{ attributeStatus: 'Rejected', attributeStatusInfo: { reasonCode: 'ValueOutOfRange' } }] } } as any), 'Rejected:ValueOutOfRange');
  t.equal(statusWithReason({ kind: 'result', payload: { status: 'Accepted' } } as any), 'Accepted');
  t.equal(statusWithReason({ kind: 'result', payload: { status: 'Rejected', statusInfo: { reasonCode: 'a reason\nwith "quotes" and far too long' } } } as any), 'Rejected', 'a reason that is not a short code is left out');
});
