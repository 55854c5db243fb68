"""A session's cells (flink_bridge.cells): declarations and their ids, what a step reads and writes under the record's
key, loads, the writes a barrier drains, TTLs, what a key's cells take, and eviction (docs/protocol.md, "Cells")."""
import os
import struct
import unittest

from flink_bridge import cells, sdk
from flink_bridge.cells import CLEAR, PUT, REMOVE, SET, CellOutsideRecord, CellStore
from flink_bridge.sdk import map_cell, value_cell
from tests.test_cells_sessions import key_cells


def stamped(millis, value):
    return struct.pack("<q", millis) + value


class Clock:
    """Stamps the processing time the cells read, as a CLOCK input does, for one test."""

    def __init__(self, test, millis):
        outer = sdk._stamped_millis
        test.addCleanup(sdk.stamp_clock, outer)
        self.set(millis)

    @staticmethod
    def set(millis):
        sdk.stamp_clock(millis)


def store_with(*steps):
    """A sealed store whose step i declares ``steps[i]``: (kind, name, ttl_ms) each; and the handles by name."""
    store = CellStore()
    handles = {}
    for index, declared in enumerate(steps):
        with store.declaring(index, f"step{index}"):
            for kind, name, ttl_ms in declared:
                handles[name] = (value_cell if kind == "value" else map_cell)(name, ttl_ms)
    store.seal()
    return store, handles


def load(store, sequence, key, **contents):
    """A LOAD of ``key`` with ``contents``: cell id (as c<id>) to a value (bytes) or entries (a dict)."""
    store.load(sequence, key_cells(key, **contents))


class TotalAndSeenTest(unittest.TestCase):
    """Tests of a store whose one step declares the value cell ``total`` and the map cell ``seen``, no TTL."""

    def setUp(self):
        self.store, handles = store_with([("value", "total", 0), ("map", "seen", 0)])
        self.total, self.seen = handles["total"], handles["seen"]


class DeclaringTest(unittest.TestCase):

    def test_cells_are_numbered_in_step_order_then_declaration_order(self):
        store, _ = store_with([("value", "a", 0), ("map", "b", 500)], [], [("value", "a", 7)])
        self.assertEqual([(0, 0, "step0", "a", cells.VALUE, 0), (1, 0, "step0", "b", cells.MAP, 500),
                          (2, 2, "step2", "a", cells.VALUE, 7)],
                         [(s.id, s.step_index, s.step, s.name, s.kind, s.ttl_ms) for s in store.specs])

    def test_a_name_declared_twice_in_a_step_is_refused(self):
        store = CellStore()
        with self.assertRaisesRegex(ValueError, "step 'x' declares cell 'a' twice"):
            with store.declaring(0, "x"):
                value_cell("a")
                map_cell("a")

    def test_a_step_built_again_must_declare_the_same_cells(self):
        store, _ = store_with([("value", "a", 0), ("map", "b", 5)])
        with store.declaring(0, "step0"):
            again = value_cell("a"), map_cell("b", ttl_ms=5)
        self.assertEqual([0, 1], [handle._id for handle in again])
        with self.assertRaisesRegex(ValueError, "declares map cell 'b' \\(ttl_ms 6\\) where it declared map cell 'b' "
                                                "\\(ttl_ms 5\\)"):
            with store.declaring(0, "step0"):
                value_cell("a")
                map_cell("b", ttl_ms=6)
        with self.assertRaisesRegex(ValueError, "did not declare cell 'b' of step 'step0' this time"):
            with store.declaring(0, "step0"):
                value_cell("a")
        with self.assertRaisesRegex(ValueError, "declares value cell 'c' .* where it declared nothing"):
            with store.declaring(0, "step0"):
                value_cell("a")
                map_cell("b", ttl_ms=5)
                value_cell("c")

    def test_a_cell_declared_outside_the_building_of_a_step_is_refused(self):
        with self.assertRaisesRegex(RuntimeError, "cell 'a' is declared where no session keeps cells"):
            value_cell("a")

    def test_names_and_ttls_are_checked(self):
        store = CellStore()
        with store.declaring(0, "x"):
            for name, ttl in (("", 0), (b"a", 0), ("a", -1), ("a", True), ("a", 1.5)):
                with self.assertRaises(TypeError):
                    value_cell(name, ttl)


class ReadingAndWritingTest(TotalAndSeenTest):

    def enter(self, key):
        self.assertTrue(self.store.enter(key))
        self.addCleanup(self.store.leave)

    def test_each_key_has_its_own_cells(self):
        for key in (b"a", b"b"):
            self.store.make_resident(key)
        self.enter(b"a")
        self.total.set(b"1")
        self.seen.put(b"x", b"")
        self.assertEqual(b"a", sdk.current_key())
        self.store.leave()
        self.enter(b"b")
        self.assertIsNone(self.total.get())
        self.assertEqual(b"none", self.total.get(b"none"))
        self.assertNotIn(b"x", self.seen)
        self.assertEqual(0, len(self.seen))
        self.store.leave()
        self.enter(b"a")
        self.assertEqual(b"1", self.total.get())
        self.assertEqual([(b"x", b"")], self.seen.items())
        self.assertTrue(self.seen.contains(b"x"))

    def test_a_barrier_drains_the_final_state_of_what_changed_and_the_cells_are_clean_after_it(self):
        load(self.store, 1, b"a", c0=b"loaded", c1={b"keep": b"k", b"drop": b"d", b"change": b"c"})
        load(self.store, 2, b"b", c0=b"untouched")
        self.enter(b"a")
        self.total.set(b"first")
        self.total.set(b"second")
        self.seen.remove(b"drop")
        self.seen.put(b"change", b"c2")
        self.seen.put(b"new", b"n")
        self.seen.remove(b"new")
        self.seen.remove(b"never there")
        self.store.leave()
        self.assertEqual([(b"a", [(0, SET, b"second", b""), (1, REMOVE, b"", b"drop"), (1, PUT, b"c2", b"change"),
                                  (1, REMOVE, b"", b"new")])], self.store.drain())
        self.assertEqual([], self.store.drain())
        self.enter(b"a")
        self.assertEqual([(b"keep", b"k"), (b"change", b"c2")], self.seen.items())
        self.total.clear()
        self.store.leave()
        self.assertEqual([(b"a", [(0, CLEAR, b"", b"")])], self.store.drain())

    def test_a_map_cleared_then_written_drains_its_clear_before_its_puts(self):
        load(self.store, 1, b"a", c1={b"old": b"o", b"both": b"b"})
        self.enter(b"a")
        self.seen.put(b"before", b"x")
        self.seen.clear()
        self.seen.put(b"both", b"b2")
        self.seen.put(b"after", b"y")
        self.store.leave()
        self.assertEqual([(b"a", [(1, CLEAR, b"", b""), (1, PUT, b"b2", b"both"), (1, PUT, b"y", b"after")])],
                         self.store.drain())

    def test_clearing_what_is_empty_changes_nothing(self):
        self.store.make_resident(b"a")
        self.enter(b"a")
        self.total.clear()
        self.seen.clear()
        self.seen.remove(b"x")
        self.assertFalse(self.store.dirty())
        self.store.leave()
        self.assertEqual([], self.store.drain())

    def test_keys_are_drained_in_the_order_they_first_changed(self):
        for key in (b"a", b"b", b"c"):
            self.store.make_resident(key)
        for key in (b"c", b"a", b"c"):
            self.enter(key)
            self.total.set(key)
            self.store.leave()
        self.assertEqual([b"c", b"a"], [key for key, _ in self.store.drain()])

    def test_a_cell_used_outside_a_record_names_the_step_and_the_cell(self):
        for use in (self.total.get, lambda: self.total.set(b"x"), self.seen.items, lambda: self.seen.get(b"k")):
            with self.assertRaisesRegex(CellOutsideRecord, "step 'step0': cell '(total|seen)' is used outside a "
                                                           "record"):
                use()
        self.assertIsNone(sdk.current_key())

    def test_values_and_entry_keys_are_bytes(self):
        self.store.make_resident(b"a")
        self.enter(b"a")
        with self.assertRaisesRegex(TypeError, "cell 'total' of step 'step0': a value must be bytes, not str "
                                               "\\(encode text"):
            self.total.set("text")
        with self.assertRaisesRegex(TypeError, "an entry's key must be bytes, not int"):
            self.seen.put(1, b"x")
        self.seen.put(bytearray(b"k"), memoryview(b"v"))
        self.assertEqual([(b"k", b"v")], self.seen.items())
        self.assertIs(bytes, type(self.seen.keys()[0]))

    def test_a_record_whose_key_was_never_loaded_is_not_resident(self):
        self.assertFalse(self.store.enter(b"stranger"))
        self.assertIsNone(self.store.current)

    def test_a_write_that_would_not_fit_a_frame_fails_in_the_step(self):
        self.store.max_write_bytes = 100
        self.store.make_resident(b"key")
        self.enter(b"key")
        self.total.set(b"x" * (100 - 3 - cells.WRITE_OVERHEAD))
        with self.assertRaisesRegex(ValueError, "cell 'seen' of step 'step0': a value of 65 bytes \\(with key 'key' "
                                                "and its entry key\\) takes 101 bytes in a frame, more than the 100"):
            self.seen.put(b"e", b"x" * 65)


class LoadingTest(TotalAndSeenTest):

    def contents(self, key):
        self.assertTrue(self.store.enter(key))
        try:
            return self.total.get(), self.seen.items()
        finally:
            self.store.leave()

    def test_the_first_load_of_an_input_replaces_the_key_and_further_ones_add_to_it(self):
        load(self.store, 1, b"a", c0=b"v", c1={b"x": b"1"})
        load(self.store, 1, b"a", c1={b"y": b"2"})
        self.assertEqual((b"v", [(b"x", b"1"), (b"y", b"2")]), self.contents(b"a"))
        load(self.store, 5, b"a", c1={b"z": b"3"})
        self.assertEqual((None, [(b"z", b"3")]), self.contents(b"a"))
        self.assertIsNone(self.store.loading)

    def test_a_load_replaces_what_changed_since_the_barrier(self):
        load(self.store, 1, b"a", c0=b"v")
        self.store.enter(b"a")
        self.total.set(b"changed")
        self.store.leave()
        load(self.store, 2, b"a", c0=b"v")
        self.assertEqual([], self.store.drain())
        self.assertEqual((b"v", []), self.contents(b"a"))

    def test_a_load_that_does_not_fit_the_declarations_is_refused(self):
        with self.assertRaisesRegex(ValueError, "LOAD of input #3 names cell 2 for key 'a', but the session's steps "
                                                "declare 2 cell"):
            load(self.store, 3, b"a", c2=b"v")
        with self.assertRaisesRegex(ValueError, "gives entries to cell 'total' of step 'step0', a value cell"):
            load(self.store, 3, b"a", c0={b"x": b"y"})
        with self.assertRaisesRegex(ValueError, "gives a value to cell 'seen' of step 'step0', a map cell "
                                                "\\(key b'\\\\xff'\\)"):
            load(self.store, 3, b"\xff", c1=b"v")

    def test_the_loading_input_is_known_until_its_record_comes(self):
        load(self.store, 7, b"a")
        self.assertEqual(7, self.store.loading)
        self.assertTrue(self.store.enter(b"a"))
        self.store.leave()
        self.assertIsNone(self.store.loading)


class TtlTest(unittest.TestCase):

    def setUp(self):
        self.clock = Clock(self, 10_000)
        self.store, handles = store_with([("value", "last", 1000), ("map", "seen", 1000), ("value", "plain", 0)])
        self.last, self.seen, self.plain = handles["last"], handles["seen"], handles["plain"]
        self.store.make_resident(b"k")

    def enter(self):
        self.assertTrue(self.store.enter(b"k"))
        self.addCleanup(self.store.leave)

    def test_a_value_is_stored_behind_its_write_time_and_gone_at_its_time_plus_the_ttl(self):
        self.enter()
        self.last.set(b"v")
        self.seen.put(b"e", b"w")
        self.plain.set(b"p")
        self.clock.set(10_999)
        self.assertEqual((b"v", b"w", [(b"e", b"w")], 1), (self.last.get(), self.seen.get(b"e"), self.seen.items(),
                                                          len(self.seen)))
        self.assertEqual([(b"k", [(0, SET, stamped(10_000, b"v"), b""), (1, PUT, stamped(10_000, b"w"), b"e"),
                                  (2, SET, b"p", b"")])], self.store.drain())
        self.clock.set(11_000)
        self.assertEqual((None, None, [], 0, False), (self.last.get(), self.seen.get(b"e"), self.seen.items(),
                                                      len(self.seen), b"e" in self.seen))
        self.assertEqual(b"p", self.plain.get())
        # Expiry is no change of the step's: nothing is written back for it.
        self.assertEqual([], self.store.drain())

    def test_a_loaded_value_carries_its_write_time(self):
        load(self.store, 1, b"k", c0=stamped(9_500, b"old"), c1={b"a": stamped(9_000, b"gone"),
                                                                  b"b": stamped(9_001, b"kept")})
        self.enter()
        self.assertEqual((b"old", [(b"b", b"kept")]), (self.last.get(), self.seen.items()))
        with self.assertRaisesRegex(ValueError, "a value of 3 bytes, without the 8-byte write time"):
            load(self.store, 2, b"k", c1={b"a": b"abc"})

    def test_a_write_refreshes_the_time(self):
        self.enter()
        self.last.set(b"v")
        self.clock.set(10_900)
        self.last.set(b"v")
        self.clock.set(11_500)
        self.assertEqual(b"v", self.last.get())

    def test_a_changed_value_that_expires_before_the_barrier_is_written_back_as_gone(self):
        self.enter()
        self.last.set(b"v")
        self.seen.put(b"e", b"w")
        self.clock.set(12_000)
        self.assertEqual((None, []), (self.last.get(), self.seen.items()))
        self.assertEqual([(b"k", [(0, CLEAR, b"", b""), (1, REMOVE, b"", b"e")])], self.store.drain())


class ResidentBytesTest(unittest.TestCase):
    """What a key's cells take (CELL_WRITES' resident_bytes): every stored value, entry key and stored entry value,
    a TTL cell's values with their 8-byte write time."""

    def setUp(self):
        self.clock = Clock(self, 10_000)
        self.store, handles = store_with([("value", "v", 0), ("map", "m", 0)],
                                         [("value", "tv", 1000), ("map", "tm", 1000)])
        self.v, self.m, self.tv, self.tm = handles["v"], handles["m"], handles["tv"], handles["tm"]

    def test_a_key_not_resident_or_with_empty_cells_takes_nothing(self):
        self.assertEqual(0, self.store.resident_bytes(b"stranger"))
        self.store.make_resident(b"a")
        self.assertEqual(0, self.store.resident_bytes(b"a"))

    def test_values_entry_keys_and_entry_values_count_and_a_ttl_cells_values_with_their_write_time(self):
        load(self.store, 1, b"a", c0=b"12345", c1={b"k1": b"abc", b"key2": b""},
             c2=stamped(9_900, b"xy"), c3={b"e": stamped(9_900, b"1234")})
        self.assertEqual(5 + (2 + 3) + (4 + 0) + (8 + 2) + (1 + 8 + 4), self.store.resident_bytes(b"a"))
        self.assertTrue(self.store.enter(b"a"))
        self.v.clear()
        self.m.remove(b"k1")
        self.m.put(b"new", b"v")
        self.tv.set(b"longer value")
        self.tm.clear()
        self.store.leave()
        self.assertEqual((4 + 0) + (3 + 1) + (8 + 12), self.store.resident_bytes(b"a"))

    def test_what_expired_counts_until_it_is_dropped_on_reading(self):
        load(self.store, 1, b"a", c2=stamped(9_000, b"old"), c3={b"e": stamped(9_000, b"old")})
        self.clock.set(10_500)
        self.assertEqual((8 + 3) + (1 + 8 + 3), self.store.resident_bytes(b"a"))
        self.assertTrue(self.store.enter(b"a"))
        self.assertEqual((None, []), (self.tv.get(), self.tm.items()))
        self.store.leave()
        self.assertEqual(0, self.store.resident_bytes(b"a"))


class EvictTest(TotalAndSeenTest):

    def test_an_evicted_key_is_no_longer_resident_and_a_load_brings_it_back_as_loaded(self):
        load(self.store, 1, b"a", c0=b"a0", c1={b"x": b"1"})
        load(self.store, 2, b"b", c0=b"b0")
        self.assertTrue(self.store.enter(b"a"))
        self.total.set(b"a1")
        self.store.leave()
        self.assertEqual([(b"a", [(0, SET, b"a1", b"")])], self.store.drain())
        self.store.evict([b"a", b"not resident"])
        self.assertFalse(self.store.enter(b"a"))
        self.assertEqual(0, self.store.resident_bytes(b"a"))
        self.assertTrue(self.store.enter(b"b"))
        self.assertEqual(b"b0", self.total.get())
        self.store.leave()
        load(self.store, 3, b"a", c1={b"y": b"2"})
        self.assertTrue(self.store.enter(b"a"))
        self.assertEqual((None, [(b"y", b"2")]), (self.total.get(), self.seen.items()))
        self.store.leave()
        self.assertEqual([], self.store.drain())

    @unittest.skipIf(cells._MALLOC_TRIM is None, "no glibc malloc_trim here")
    def test_evicting_gives_what_the_evicted_cells_took_back_to_the_system(self):
        keys = [b"k%d" % i for i in range(65536)]
        for sequence, key in enumerate(keys):
            load(self.store, sequence, key, c0=os.urandom(1024))
        loaded = anonymous_resident_bytes()
        # The last key's value lies on top of the C heap: malloc gives back by itself none of what lies below it.
        self.store.evict(keys[:-1])
        self.assertLess(anonymous_resident_bytes(), loaded - (32 << 20))
        self.assertTrue(self.store.enter(keys[-1]))


def anonymous_resident_bytes():
    """This process's RssAnon."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/self/status")


if __name__ == "__main__":
    unittest.main()
