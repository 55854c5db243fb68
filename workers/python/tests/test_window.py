"""The built-in ``window`` step (docs/steps.md): per-key tumbling and sliding event-time windows with an aggregate, its
windows in the map cell ``windows`` and its last firing in ``fired_until``, an event-time timer per window at
end - 1 + allowed_lateness_ms, late records passed on with the header ``late``; run by the StepHarness (which fires
timers as the bridge does) and in a keyed session over a ring."""
import json
import struct
import unittest

from flink_bridge import layout as L
from flink_bridge._proto import data as data_pb2
from flink_bridge.cells import CellsNotKeyed
from flink_bridge.sdk import EVENT_TIME, Message
from flink_bridge.testing import StepHarness
from tests import rings
from tests.test_cells_sessions import key_cells, keyed_record
from tests.test_timers_sessions import changes, timer_body


def record(key, timestamp, **fields):
    return Message(json.dumps({"user": key, **fields}).encode(), {}, timestamp)


def window(key, start, end, **aggregate):
    """A window's output: compact JSON, the aggregate last; header key, timestamp end - 1."""
    return Message(json.dumps({"key": key, "window_start": start, "window_end": end, **aggregate},
                              separators=(",", ":"), ensure_ascii=False).encode(), {"key": key}, end - 1)


def entry(start, key):
    return struct.pack(">q", start) + key.encode()


def i64(value):
    return struct.pack("<q", value)


class WindowTest(unittest.TestCase):

    def harness(self, **config):
        harness = StepHarness("window", {"key_json_field": "user", **config}, name="w")
        self.addCleanup(harness.close)
        return harness

    def test_tumbling_windows_count_per_key_and_fire_once_the_watermark_reaches_their_end(self):
        harness = self.harness(size_ms=10)
        self.assertEqual([], harness.process(record("a", 3), key="s"))
        harness.process(record("a", 9), key="s")
        harness.process(record("a", 10), key="s")
        self.assertEqual([(EVENT_TIME, 9), (EVENT_TIME, 19)], harness.timers("s"))
        self.assertEqual({"windows": {entry(0, "a"): i64(2), entry(10, "a"): i64(1)}, "fired_until": None},
                         harness.cells("s"))
        self.assertEqual([], harness.watermark(8))
        self.assertEqual([window("a", 0, 10, count=2)], harness.watermark(9))
        self.assertEqual({"windows": {entry(10, "a"): i64(1)}, "fired_until": i64(9)}, harness.cells("s"))
        self.assertEqual([window("a", 10, 20, count=1)], harness.end_input())

    def test_sliding_windows_hold_a_record_in_every_window_over_its_timestamp(self):
        harness = self.harness(size_ms=10, slide_ms=5)
        harness.process(record("a", 3), key="s")
        harness.process(record("a", -1), key="s")
        self.assertEqual([(EVENT_TIME, -1), (EVENT_TIME, 4), (EVENT_TIME, 9)], harness.timers("s"))
        self.assertEqual([window("a", -10, 0, count=1), window("a", -5, 5, count=2), window("a", 0, 10, count=1)],
                         harness.end_input())

    def test_each_aggregate_of_a_json_integer_field(self):
        for aggregate, expected in (("count", 3), ("sum", 2), ("min", -5), ("max", 4)):
            with self.subTest(aggregate):
                harness = self.harness(size_ms=10, aggregate=aggregate, field="n")
                for n in (3, -5, 4):
                    harness.process(record("a", 1, n=n), key="s")
                self.assertEqual([window("a", 0, 10, **{aggregate: expected})], harness.end_input())

    def test_a_firing_emits_the_windows_of_the_sessions_key_in_order_of_their_keys_bytes(self):
        # The step's key (its key_json_field) under one session key, as when the bridge keys by another field.
        harness = self.harness(size_ms=10)
        for user in ("b", "é", "a"):
            harness.process(record(user, 5), key="s")
        self.assertEqual([window("a", 0, 10, count=1), window("b", 0, 10, count=1), window("é", 0, 10, count=1)],
                         harness.watermark(9))

    def test_allowed_lateness_delays_the_firing_and_a_record_whose_windows_all_fired_is_late(self):
        harness = self.harness(size_ms=10, allowed_lateness_ms=5)
        harness.process(record("a", 1), key="s")
        self.assertEqual([(EVENT_TIME, 14)], harness.timers("s"))
        self.assertEqual([], harness.watermark(12))
        # Behind the watermark, but its window has not fired: it counts.
        self.assertEqual([], harness.process(record("a", 2), key="s"))
        self.assertEqual([window("a", 0, 10, count=2)], harness.watermark(14))
        self.assertEqual(i64(14), harness.cells("s")["fired_until"])
        late = Message(b'{"user": "a"}', {"trace": "1"}, 3)
        self.assertEqual([Message(b'{"user": "a"}', {"trace": "1", "late": "w"}, 3)], harness.process(late, key="s"))
        self.assertEqual([], harness.timers("s"))
        self.assertEqual({}, harness.cells("s")["windows"])

    def test_a_record_with_a_window_still_open_counts_only_in_the_open_ones(self):
        harness = self.harness(size_ms=10, slide_ms=5)
        harness.process(record("a", 6), key="s")
        self.assertEqual([window("a", 0, 10, count=1)], harness.watermark(9))
        self.assertEqual([], harness.process(record("a", 7), key="s"))
        self.assertEqual([window("a", 5, 15, count=2)], harness.end_input())

    def test_records_it_cannot_aggregate_fail(self):
        for name, config, message, error in (
                ("no key", {}, Message(b"{}", {}, 1), "the record has no key to window by"),
                ("no field", {"aggregate": "sum", "field": "n"}, record("a", 1), 'the record has no field "n" to sum'),
                ("not an integer", {"aggregate": "max", "field": "n"}, record("a", 1, n=1.5),
                 'field "n" is 1.5, not an integer'),
                ("text", {"aggregate": "min", "field": "n"}, record("a", 1, n="1"), 'field "n" is "1", not an integer'),
                ("past 64 bits", {"aggregate": "sum", "field": "n"}, record("a", 1, n=2 ** 63),
                 'field "n" is 9223372036854775808, which does not fit 64 bits'),
                ("not JSON", {"aggregate": "sum", "field": "n", "key_header": "user", "key_json_field": None},
                 Message(b"x", {"user": "a"}, 1), 'the payload is not JSON, so it has no field "n"')):
            with self.subTest(name):
                harness = self.harness(size_ms=10, **config)
                with self.assertRaisesRegex(ValueError, error):
                    harness.process(message, key="s")

    def test_a_sum_that_overflows_fails_the_record(self):
        harness = self.harness(size_ms=10, aggregate="sum", field="n")
        harness.process(record("a", 1, n=2 ** 63 - 1), key="s")
        with self.assertRaisesRegex(ValueError, 'the sum of window \\[0, 10\\) of key "a" overflows 64 bits'):
            harness.process(record("a", 2, n=1), key="s")

    def test_config_errors_name_the_field(self):
        for config, error in (
                ({"size_ms": 10, "key_json_field": None}, "config needs key_header or key_json_field"),
                ({}, "config size_ms must be a whole number >= 1, not null"),
                ({"size_ms": 0}, "config size_ms must be a whole number >= 1, not 0"),
                ({"size_ms": 10, "slide_ms": 11}, "config slide_ms must be at most size_ms \\(10\\), not 11"),
                ({"size_ms": 10, "allowed_lateness_ms": -1}, "config allowed_lateness_ms must be a whole number >= 0, "
                                                             "not -1"),
                ({"size_ms": 10, "aggregate": "avg"}, "config aggregate must be one of count, sum, min, max or a user "
                                                      'class \\(a name with a dot\\), not "avg"'),
                ({"size_ms": 10, "aggregate": "sum"}, "config field is required for aggregate sum")):
            with self.subTest(config):
                with self.assertRaisesRegex(ValueError, "step 'w': " + error):
                    StepHarness("window", {"key_json_field": "user", **config}, name="w")

    def test_a_session_that_is_not_keyed_is_refused(self):
        with self.assertRaisesRegex(CellsNotKeyed, "step 'w' declares cell 'windows', but the harness is not keyed"):
            StepHarness("window", {"key_json_field": "user", "size_ms": 10}, name="w", keyed=False)


AVERAGE, TRACE, FAILING = "tests.aggregates.Average", "tests.aggregates.Trace", "tests.aggregates.Failing"


def value(key, timestamp, v):
    return Message(json.dumps({"user": key, "v": v}).encode(), {"h": "1"}, timestamp)


def result(key, start, end, result_json):
    """A user aggregate's output: the result's JSON in the field result."""
    return Message(f'{{"key":"{key}","window_start":{start},"window_end":{end},"result":{result_json}}}'.encode(),
                   {"key": key}, end - 1)


def sums(total, count):
    """An Average accumulator: the sum and the count, each an i64 big-endian."""
    return struct.pack(">qq", total, count)


class UserAggregateTest(unittest.TestCase):
    """A user aggregate (tests/aggregates.py): an accumulator per pane of gcd(size_ms, slide_ms), the panes merged
    when a window fires. The same records and outputs as the Java worker's WindowStepTest."""

    def harness(self, aggregate, **config):
        harness = StepHarness("window", {"key_json_field": "user", "size_ms": 10, **config, "aggregate": aggregate},
                              name="w")
        self.addCleanup(harness.close)
        return harness

    def test_tumbling_windows_keep_one_accumulator_per_window_and_never_merge(self):
        for aggregate in (AVERAGE, TRACE):
            with self.subTest(aggregate):
                average = aggregate == AVERAGE
                harness = self.harness(aggregate)
                for user, timestamp, v in (("a", 1, 2), ("b", 5, 1), ("a", 3, 4), ("a", 12, 3)):
                    self.assertEqual([], harness.process(value(user, timestamp, v), key="s"))
                self.assertEqual([(EVENT_TIME, 9), (EVENT_TIME, 19)], harness.timers("s"))
                self.assertEqual({entry(0, "a"): sums(6, 2) if average else b"2,4",
                                  entry(0, "b"): sums(1, 1) if average else b"1",
                                  entry(10, "a"): sums(3, 1) if average else b"3"}, harness.cells("s")["windows"])
                self.assertEqual([result("a", 0, 10, "3.0" if average else '{"trace":"2,4"}'),
                                  result("b", 0, 10, "1.0" if average else '{"trace":"1"}')], harness.watermark(9))
                self.assertEqual({"windows": {entry(10, "a"): sums(3, 1) if average else b"3"},
                                  "fired_until": i64(9)}, harness.cells("s"))
                self.assertEqual([result("a", 10, 20, "3.0" if average else '{"trace":"3"}')], harness.end_input())
                self.assertEqual({}, harness.cells("s")["windows"])

    def test_sliding_windows_merge_their_panes_and_a_pane_is_dropped_after_its_last_window(self):
        for aggregate in (AVERAGE, TRACE):
            with self.subTest(aggregate):
                average = aggregate == AVERAGE
                harness = self.harness(aggregate, slide_ms=5)
                harness.process(value("a", 1, 1), key="s")   # pane 0: [-5, 5) and [0, 10)
                harness.process(value("a", 7, 2), key="s")   # pane 5: [0, 10) and [5, 15)
                harness.process(value("a", 8, 3), key="s")   # pane 5
                harness.process(value("a", 12, 7), key="s")  # pane 10: [5, 15) and [10, 20)
                self.assertEqual([(EVENT_TIME, 4), (EVENT_TIME, 9), (EVENT_TIME, 14), (EVENT_TIME, 19)],
                                 harness.timers("s"))
                self.assertEqual({entry(0, "a"): sums(1, 1) if average else b"1",
                                  entry(5, "a"): sums(5, 2) if average else b"2,3",
                                  entry(10, "a"): sums(7, 1) if average else b"7"}, harness.cells("s")["windows"])
                self.assertEqual([result("a", -5, 5, "1.0" if average else '{"trace":"1"}')], harness.watermark(4))
                self.assertEqual(3, len(harness.cells("s")["windows"]), "pane 0 is in [0, 10) too")
                self.assertEqual([result("a", 0, 10, "2.0" if average else '{"trace":"[1|2,3]"}')],
                                 harness.watermark(9))
                self.assertEqual({entry(5, "a"): sums(5, 2) if average else b"2,3",
                                  entry(10, "a"): sums(7, 1) if average else b"7"}, harness.cells("s")["windows"])
                self.assertEqual([result("a", 5, 15, "4.0" if average else '{"trace":"[2,3|7]"}')],
                                 harness.watermark(14))
                self.assertEqual({entry(10, "a"): sums(7, 1) if average else b"7"}, harness.cells("s")["windows"])
                self.assertEqual([result("a", 10, 20, "7.0" if average else '{"trace":"7"}')], harness.end_input())
                self.assertEqual({}, harness.cells("s")["windows"])

    def test_a_pane_is_the_greatest_common_divisor_of_size_and_slide(self):
        harness = self.harness(TRACE, slide_ms=4)
        for timestamp in range(0, 10, 3):
            harness.process(value("a", timestamp, timestamp), key="s")  # panes 0, 2, 6, 8
        self.assertEqual({entry(0, "a"): b"0", entry(2, "a"): b"3", entry(6, "a"): b"6", entry(8, "a"): b"9"},
                         harness.cells("s")["windows"])
        self.assertEqual([result("a", -8, 2, '{"trace":"0"}'), result("a", -4, 6, '{"trace":"[0|3]"}'),
                          result("a", 0, 10, '{"trace":"[[[0|3]|6]|9]"}')], harness.watermark(9))
        # Panes 0 and 2 were in no later window than [0, 10); 6 is in [4, 14) too, 8 in [4, 14) and [8, 18).
        self.assertEqual({entry(6, "a"): b"6", entry(8, "a"): b"9"}, harness.cells("s")["windows"])
        self.assertEqual([result("a", 4, 14, '{"trace":"[6|9]"}'), result("a", 8, 18, '{"trace":"9"}')],
                         harness.end_input())

    def test_the_accumulators_come_back_from_a_checkpoint(self):
        harness = self.harness(TRACE, slide_ms=5)
        harness.process(value("a", 1, 1), key="s")
        harness.process(value("a", 6, 2), key="s")
        self.assertEqual([result("a", -5, 5, '{"trace":"1"}')], harness.watermark(4))
        checkpoint = harness.checkpoint()
        restored = self.harness(TRACE, slide_ms=5)
        restored.restore(checkpoint)
        self.assertEqual({"windows": {entry(0, "a"): b"1", entry(5, "a"): b"2"}, "fired_until": i64(4)},
                         restored.cells("s"))
        restored.process(value("a", 8, 3), key="s")
        self.assertEqual([result("a", 0, 10, '{"trace":"[1|2,3]"}')], restored.watermark(9))
        self.assertEqual([result("a", 5, 15, '{"trace":"2,3"}')], restored.end_input())

    def test_a_record_whose_windows_all_fired_is_late(self):
        harness = self.harness(AVERAGE, slide_ms=5, allowed_lateness_ms=5)
        harness.process(value("a", 3, 4), key="s")  # [-5, 5) fires at 9, [0, 10) at 14
        self.assertEqual([result("a", -5, 5, "4.0")], harness.watermark(9))
        self.assertEqual([], harness.process(value("a", 4, 2), key="s"), "[0, 10) is open")
        self.assertEqual([result("a", 0, 10, "3.0")], harness.watermark(14))
        self.assertEqual({}, harness.cells("s")["windows"])
        late = value("a", 2, 8)
        self.assertEqual([Message(late.payload, {"h": "1", "late": "w"}, 2)], harness.process(late, key="s"))
        self.assertEqual({}, harness.cells("s")["windows"], "a late record is added to no pane")
        self.assertEqual([], harness.timers("s"))

    def test_a_failure_fails_the_record_or_the_firing_naming_the_step_and_the_class(self):
        named = f"step 'w': aggregate {FAILING}"
        harness = self.harness(FAILING)
        with self.assertRaises(ValueError) as failed:
            harness.process(value("a", 1, 13), key="s")
        self.assertEqual(f"{named} failed in add(): RuntimeError: told to fail on 13", str(failed.exception))

        harness = self.harness(FAILING, slide_ms=5)
        harness.process(value("a", 1, 1), key="s")
        harness.process(value("a", 6, 2), key="s")
        with self.assertRaises(ValueError) as failed:
            harness.watermark(9)
        self.assertEqual(f"{named} failed in merge(): RuntimeError: told not to merge", str(failed.exception))

        harness = self.harness(FAILING)
        harness.process(value("a", 1, 99), key="s")
        with self.assertRaises(ValueError) as failed:
            harness.watermark(9)
        self.assertEqual(f"{named} failed in result(): RuntimeError: told to fail on 99", str(failed.exception))

        harness = self.harness(FAILING)
        harness.process(value("a", 1, 0), key="s")
        with self.assertRaises(ValueError) as failed:
            harness.watermark(9)
        self.assertEqual(f"{named}: result() returned a object, which cannot be written as JSON: Object of type "
                         "object is not JSON serializable", str(failed.exception))

        harness = self.harness("tests.aggregates.Forgetful")
        with self.assertRaisesRegex(ValueError, "^step 'w': aggregate tests.aggregates.Forgetful: add\\(\\) returned "
                                    "None, not an accumulator \\(bytes\\)$"):
            harness.process(value("a", 1, 1), key="s")

    def test_config_errors_name_the_step_and_the_class(self):
        for aggregate, config, error in (
                ("no_such_module.Aggregate", {}, "step 'w': cannot import module no_such_module \\(is it on the "
                                                 "worker's PYTHONPATH or --path\\?\\): ModuleNotFoundError"),
                ("tests.aggregates.Missing", {}, "step 'w': aggregate tests.aggregates.Missing: module "
                                                 "tests.aggregates has no class Missing"),
                (AVERAGE, {"field": "v"}, f"step 'w': config field is not used with a user aggregate \\({AVERAGE}\\), "
                                          "whose add\\(\\) is given the whole record"),
                ("tests.aggregates.NoMerge", {}, "step 'w': aggregate tests.aggregates.NoMerge has no method merge: a "
                                                 "window aggregate has add\\(accumulator, record\\), merge\\(a, b\\) "
                                                 "and result\\(accumulator\\)"),
                ("tests.aggregates.Partial", {}, "step 'w': creating aggregate tests.aggregates.Partial failed: "
                                                 "TypeError: Can't instantiate abstract class Partial"),
                (".Aggregate", {}, "step 'w': config aggregate \".Aggregate\" names no class: a user aggregate is "
                                   "module.Class")):
            with self.subTest(aggregate):
                with self.assertRaisesRegex(ValueError, "^" + error):
                    StepHarness("window", {"key_json_field": "user", "size_ms": 10, "aggregate": aggregate, **config},
                                name="w")


class WindowInASessionTest(unittest.TestCase):

    def test_a_record_sets_its_windows_timers_and_their_firing_emits_and_records_fired_until(self):
        served = rings.serve_keyed(self, [("w", "window", '{"key_json_field": "user", "size_ms": 10}')], fails=False)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b'{"user": "a"}', 3), 5)
        bridge.send(L.TIMER, 1, timer_body(b"a", 9), 5)
        bridge.send(L.BARRIER, 2, struct.pack("<q", 1))
        answers = rings.readable(served.await_answers(6), {L.TIMERS: changes})
        self.assertEqual([(L.TIMERS, 0, [(data_pb2.TIMER_OP_SET, 0, data_pb2.TIME_DOMAIN_EVENT_TIME, 9)]),
                          (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b'{"key":"a","window_start":0,"window_end":10,"count":1}'),
                          (L.END_OF_OUTPUTS, 1, b"")], answers[:4])
        written = data_pb2.KeyCells.FromString(answers[4][2])
        # The entry put and removed since the last barrier is written as removed; fired_until is set.
        self.assertEqual([(1, data_pb2.CELL_OP_SET, i64(9), b""), (0, data_pb2.CELL_OP_REMOVE, b"", entry(0, "a"))],
                         sorted(((w.cell, w.op, w.value, w.entry_key) for w in written.writes), reverse=True))


if __name__ == "__main__":
    unittest.main()
