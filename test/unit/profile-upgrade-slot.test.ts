/** 2.x profile upgrades: which configuration slot a (re)try writes its network profile into. */
import t from 'tap';
import { chooseSlot } from '../../policies/interceptors/profile-upgrade';

t.test('a retry reuses the slot of the attempt before while the charger lists it; otherwise the next free one', async (t) => {
  t.equal(chooseSlot([0], undefined), 1, 'first attempt: after the highest listed slot');
  t.equal(chooseSlot([1, 0], 1), 1, 'our slot first in the list (the charger fell back but kept it): reused, not a new one');
  t.equal(chooseSlot([0, 1], 1), 1, 'our slot listed after the one in use: reused');
  t.equal(chooseSlot([0, 2], 1), 3, 'our slot no longer listed (the charger dropped it): the next free one');
  t.equal(chooseSlot([3, 7, 5], undefined), 8);
});
