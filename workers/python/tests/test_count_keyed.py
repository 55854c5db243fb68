"""The built-in ``count`` in a keyed session (protocol 6) keeps its windows as ``window`` does (docs/steps.md): map cell
``windows``, entry key = the window start (i64 big-endian) then the key (UTF-8), value = the count (i64 little-endian),
and an event-time timer at each window's end - 1 whose firing emits the key's windows ending there. Its outputs are
those it gives in a session that is not keyed (whole-instance state and watermarks, which the golden vectors hold),
which each test here runs beside it."""
import json
import struct
import unittest

from flink_bridge.sdk import EVENT_TIME, Message
from flink_bridge.session import Session
from flink_bridge.testing import StepHarness
from tests.test_batch_keyed import segment_state

CONFIG = {"window_ms": 10, "key_json_field": "user"}


def record(user, timestamp):
    return Message(json.dumps({"user": user}).encode(), {}, timestamp)


def result(key, start, count):
    """A window's output: compact JSON, header key, timestamp window_end - 1."""
    payload = json.dumps({"key": key, "window_start": start, "window_end": start + 10, "count": count},
                         separators=(",", ":")).encode()
    return Message(payload, {"key": key}, start + 9)


def entry(start, key):
    return struct.pack(">q", start) + key.encode()


def i64(value):
    return struct.pack("<q", value)


class Both:
    """The same step in a keyed session (records keyed by their user) and as it ran before in a keyed segment, an
    instance per key group with whole-instance state (each user a key group of its own, numbered by its first letter,
    so that key group order is key order)."""

    def __init__(self, test, config=CONFIG):
        self.test = test
        self.keyed = StepHarness("count", config, name="c", keyed=True)
        self.whole = StepHarness("count", config, name="c", keyed=False)
        test.addCleanup(self.keyed.close)
        test.addCleanup(self.whole.close)

    def add(self, user, timestamp):
        self.test.assertEqual([], self.keyed.process(record(user, timestamp), key=user, key_group=ord(user[0])))
        self.test.assertEqual([], self.whole.process(record(user, timestamp), key_group=ord(user[0])))

    def watermark(self, timestamp):
        """The keyed session's outputs, which are the other's."""
        fired = self.keyed.watermark(timestamp)
        self.test.assertEqual(self.whole.watermark(timestamp), fired)
        return fired


class KeyedCountTest(unittest.TestCase):

    def test_an_in_order_stream_of_several_keys_gives_the_outputs_of_a_session_that_is_not_keyed(self):
        count = Both(self)
        for user, timestamp in (("a", 1), ("b", 3), ("a", 5), ("c", 12), ("a", 14)):
            count.add(user, timestamp)
        self.assertEqual([(EVENT_TIME, 9), (EVENT_TIME, 19)], count.keyed.timers("a"))
        self.assertEqual([(EVENT_TIME, 19)], count.keyed.timers("c"))
        self.assertEqual({"windows": {entry(0, "a"): i64(2), entry(10, "a"): i64(1)}}, count.keyed.cells("a"))
        self.assertEqual([], count.watermark(8))
        self.assertEqual([result("a", 0, 2), result("b", 0, 1)], count.watermark(10))
        self.assertEqual({"windows": {entry(10, "a"): i64(1)}}, count.keyed.cells("a"), "a fired window is dropped")
        self.assertEqual([result("a", 10, 1), result("c", 10, 1)], count.watermark(25))
        self.assertEqual({}, dict(count.keyed.checkpoint()), "no whole-instance state in a keyed session")

    def test_a_record_behind_the_watermark_is_counted_again_and_emitted_at_the_next_watermark(self):
        count = Both(self)
        count.add("a", 4)
        self.assertEqual([result("a", 0, 1)], count.watermark(20))
        count.add("a", 3)
        count.add("a", 7)
        self.assertEqual([(EVENT_TIME, 9)], count.keyed.timers("a"), "set behind the watermark")
        self.assertEqual([result("a", 0, 2)], count.watermark(21), "no late header: that is window's")

    def test_the_end_of_input_fires_every_window_in_order_per_key(self):
        count = Both(self)
        for timestamp in (25, 3, -4):
            count.add("a", timestamp)
        self.assertEqual([result("a", -10, 1), result("a", 0, 1), result("a", 20, 1)], count.watermark(2 ** 63 - 1))
        self.assertEqual([], count.keyed.timers("a"))
        self.assertEqual({"windows": {}}, count.keyed.cells("a"))

    def test_the_key_is_empty_when_not_configured_or_missing(self):
        count = Both(self, {"window_ms": 10})
        count.add("a", 1)
        count.add("b", 2)
        self.assertEqual([result("", 0, 1), result("", 0, 1)], count.watermark(10),
                         "a window per pipeline key, as the whole-instance one has one per key group")
        with StepHarness("count", CONFIG, keyed=True) as harness:
            harness.process(Message(b"{}", {}, 1), key="k")
            harness.process(Message(b"not json", {}, 2), key="k")
            self.assertEqual({"windows": {entry(0, ""): i64(2)}}, harness.cells("k"))
            self.assertEqual([result("", 0, 2)], harness.end_input())

    def test_a_checkpoint_carries_the_windows_and_their_timers(self):
        with StepHarness("count", CONFIG, keyed=True) as first:
            first.process(record("a", 1), key="a", key_group=4)
            first.process(record("b", 12), key="b", key_group=5)
            checkpoint = first.checkpoint()
        self.assertEqual({}, dict(checkpoint), "no whole-instance state")
        with StepHarness("count", CONFIG) as restored:
            # Undecided, a checkpoint with cells and timers makes the harness keyed.
            restored.restore(checkpoint)
            self.assertEqual([(EVENT_TIME, 9)], restored.timers("a"))
            restored.process(record("a", 2), key="a", key_group=4)
            self.assertEqual([result("a", 0, 2)], restored.watermark(9))
            self.assertEqual([result("b", 10, 1)], restored.end_input())

    def test_whole_instance_open_windows_restored_into_a_keyed_session_are_refused_naming_the_step(self):
        with StepHarness("count", CONFIG, keyed=False) as whole:
            whole.process(record("a", 1), key_group=3)
            whole.process(record("b", 2), key_group=3)
            held = whole.checkpoint()
            whole.end_input()
            emptied = whole.checkpoint()
        with StepHarness("count", CONFIG, name="c", keyed=True) as harness:
            with self.assertRaisesRegex(ValueError, "step 'c' \\(count\\): the checkpoint holds whole-instance open "
                                                    "windows of 2 \\(window, key\\) pair\\(s\\), but in a keyed "
                                                    "session count keeps its windows in cells"):
                harness.restore(held)
        # No open window (what a session that was not keyed snapshots once they all fired) restores.
        self.assertEqual({3: segment_state(bytes([2, 0, 0, 0, 0]))}, dict(emptied))
        with StepHarness("count", CONFIG, keyed=True) as harness:
            harness.restore(emptied)
            harness.process(record("a", 1), key="a", key_group=3)
            self.assertEqual([result("a", 0, 1)], harness.end_input())

    def test_a_cell_that_holds_no_count_fails_the_record_naming_the_step(self):
        with StepHarness("count", CONFIG, name="c", keyed=True) as harness:
            harness.load_cells("a", {"windows": {entry(0, "a"): b"\x01"}})
            with self.assertRaisesRegex(ValueError, "step 'c' \\(count\\): cell 'windows' of key \"a\" holds 1 bytes"):
                harness.process(record("a", 1), key="a")


class KeyedCountSessionTest(unittest.TestCase):

    def test_a_keyed_session_declares_the_windows_cell_and_timers_and_one_that_is_not_neither(self):
        steps = [("c", "count", '{"window_ms": 10}')]
        keyed = Session("s", steps, keyed=True)
        self.assertEqual([(0, "c", "windows")], [(spec.step_index, spec.step, spec.name)
                                                 for spec in keyed.declared_cells])
        self.assertTrue(keyed.timers.declared)
        not_keyed = Session("s", steps)
        self.assertEqual([], not_keyed.declared_cells)
        self.assertFalse(not_keyed.timers.declared)


if __name__ == "__main__":
    unittest.main()
