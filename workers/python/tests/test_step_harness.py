import time
import unittest

from flink_bridge import sdk
from flink_bridge.sdk import Message
from flink_bridge.testing import StepHarness
from tests.segments import Counter, CountsPerKey, CountsPerKeyWithOwnState, ReadsACellOnWatermarks


def user(name):
    return Message(b"{}", {"user": name}, 0)


def payloads(outputs):
    return [output.payload for output in outputs]


class StepHarnessTest(unittest.TestCase):

    def test_a_segment_class_goes_on_from_a_checkpoint_restored_into_a_new_harness(self):
        with StepHarness(Counter, {"start": 10}) as first:
            self.assertEqual([b"11"], payloads(first.process(Message(b"a"))))
            checkpoint = first.checkpoint()
        with StepHarness(Counter, {"start": 10}) as restored:
            restored.restore(checkpoint)
            self.assertEqual([b"12"], payloads(restored.process(Message(b"b"))))
            self.assertEqual([b"watermark 5"], payloads(restored.watermark(5)))

    def test_a_failed_input_raises_the_steps_own_exception_and_ends_the_session(self):
        with StepHarness("tests.segments.Echo") as harness:
            self.assertEqual([b"fine"], payloads(harness.process(Message(b"fine"))))
            with self.assertRaisesRegex(ValueError, "told to fail"):
                harness.process(Message(b"boom"))
            with self.assertRaisesRegex(RuntimeError, "the step already failed"):
                harness.process(Message(b"fine"))

    def test_an_invalid_config_fails_as_it_refuses_a_session(self):
        with self.assertRaisesRegex(ValueError, "max_count"):
            StepHarness("batch", {"max_count": 0})

    def test_running_count_goes_on_from_a_checkpoint_restored_into_a_new_harness(self):
        config = {"key_header": "user"}
        with StepHarness("running_count", config) as first:
            first.process(user("a"), key_group=3)
            first.process(user("a"), key_group=3)
            first.process(user("b"), key_group=7)
            checkpoint = first.checkpoint()
        self.assertEqual({3, 7}, set(checkpoint))
        with StepHarness("running_count", config) as restored:
            restored.restore(checkpoint)
            self.assertEqual([b'{"key":"a","count":3}'], payloads(restored.process(user("a"), key_group=3)))
            self.assertEqual([b'{"key":"b","count":2}'], payloads(restored.process(user("b"), key_group=7)))
            # One instance per key group: key group 7's has never counted "a".
            self.assertEqual([b'{"key":"a","count":1}'], payloads(restored.process(user("a"), key_group=7)))

    def test_a_batch_closes_on_a_later_input_once_the_clock_has_moved_past_max_wait(self):
        with StepHarness("batch", {"max_count": 100, "max_wait_ms": 1000}) as harness:
            harness.set_processing_time(10_000)
            self.assertEqual([], harness.process(Message(b"1")))
            harness.set_processing_time(10_999)
            self.assertEqual([], harness.process(Message(b"2")))
            harness.set_processing_time(11_000)
            self.assertEqual([b"[1,2]"], payloads(harness.process(Message(b"3"))))
            self.assertEqual([b"[3]"], payloads(harness.end_input()))
        self.assertGreater(sdk.current_time_millis(), time.time() * 1000 - 60_000,
                           "the harness's clock stays its own")

    def test_a_watermark_reaches_the_key_groups_in_order(self):
        with StepHarness("count", {"window_ms": 10, "key_header": "user"}) as harness:
            harness.process(user("b"), key_group=9)
            harness.process(user("a"), key_group=2)
            self.assertEqual(["a", "b"], [output.headers["key"] for output in harness.watermark(10)])


class StepHarnessCellsTest(unittest.TestCase):

    def test_each_key_has_its_own_cells_and_they_can_be_seen_and_loaded(self):
        with StepHarness(CountsPerKey) as harness:
            self.assertEqual([b"a=1"], payloads(harness.process(Message(b"x"), key="a")))
            self.assertEqual([b"a=2"], payloads(harness.process(Message(b"y"), key=b"a", key_group=4)))
            self.assertEqual([b"b=1"], payloads(harness.process(Message(b"x"), key="b")))
            self.assertEqual({"count": b"2", "payloads": {b"x": b"1", b"y": b"2"}}, harness.cells("a"))
            self.assertEqual({"count": None, "payloads": {}}, harness.cells("never seen"))
            cells = harness.cells("a")
        with StepHarness(CountsPerKey) as later:
            later.load_cells("a", cells)
            self.assertEqual([b"a=3"], payloads(later.process(Message(b"z"), key="a")))
            with self.assertRaisesRegex(ValueError, "the step declares no cell 'counts' \\(count, payloads\\)"):
                later.load_cells("a", {"counts": b"1"})

    def test_a_pickled_instance_with_cells_is_restored_with_its_cells_bound_to_the_new_session(self):
        with StepHarness(CountsPerKey) as first:
            first.process(Message(b"x"), key="a")
            checkpoint = first.checkpoint()
            cells = first.cells("a")
        with StepHarness(CountsPerKey) as restored:
            restored.restore(checkpoint)
            restored.load_cells("a", cells)
            self.assertEqual([b"a=2"], payloads(restored.process(Message(b"y"), key="a")))
            self.assertEqual(b"2", restored.cells("a")["count"])

    def test_a_step_with_cells_and_its_own_state_restores_that_state_keeping_its_cells(self):
        with StepHarness(CountsPerKeyWithOwnState) as first:
            first.process(Message(b"x"), key_group=3, key="a")
            checkpoint = first.checkpoint()
            cells = first.cells("a")
        self.assertEqual({3: b"\x00\x00\x00\x01\x00\x00\x00\x011"}, checkpoint)
        with StepHarness(CountsPerKeyWithOwnState) as restored:
            restored.restore(checkpoint)
            restored.load_cells("a", cells)
            self.assertEqual([b"a=2", b"records=2"], payloads(restored.process(Message(b"y"), key_group=3, key="a")))

    def test_a_ttl_cell_hides_what_expired_on_the_harness_clock(self):
        with StepHarness(CountsPerKey, {"ttl_ms": 1000}) as harness:
            harness.set_processing_time(5_000)
            harness.process(Message(b"x"), key="a")
            harness.set_processing_time(5_999)
            self.assertEqual({b"x": b"1"}, harness.cells("a")["payloads"])
            harness.set_processing_time(6_000)
            self.assertEqual({}, harness.cells("a")["payloads"])

    def test_a_step_with_cells_needs_each_records_key(self):
        with StepHarness(CountsPerKey) as harness:
            with self.assertRaisesRegex(ValueError, "the step declares cells \\(count, payloads\\): give process\\(\\) "
                                                    "the record's key"):
                harness.process(Message(b"x"))

    def test_a_cell_used_on_a_watermark_fails_as_in_a_session(self):
        with StepHarness(ReadsACellOnWatermarks, name="reads") as harness:
            harness.process(Message(b"x"), key="a")
            with self.assertRaisesRegex(RuntimeError, "step 'reads': cell 'last' is used outside a record"):
                harness.watermark(5)


if __name__ == "__main__":
    unittest.main()
