"""The StepHarness keeps a step's timers as the bridge does (docs/python-worker.md, "Timers"): pending per key, the
event-time ones fired in timestamp order before a watermark that reaches them gets to the step, the processing-time
ones once set_processing_time reaches them, none of those at the end of input, and all carried through a checkpoint."""
import unittest

from flink_bridge.sdk import EVENT_TIME, PROCESSING_TIME, Message
from flink_bridge.testing import StepHarness
from flink_bridge.timers import TimerOutsideInput, TimersNotKeyed
from tests.segments import Alarms, MarksWatermarks, SetsATimerOnWatermarks


def payloads(outputs):
    return [output.payload for output in outputs]


class TimersHarnessTest(unittest.TestCase):

    def test_a_watermark_fires_the_timers_it_reaches_in_timestamp_order_before_it_reaches_the_step(self):
        with StepHarness(MarksWatermarks) as harness:
            harness.process(Message(b"x", {}, 20), key="b", key_group=3)
            harness.process(Message(b"x", {}, 5), key="a", key_group=3)
            harness.process(Message(b"x", {}, 40), key="a", key_group=3)
            self.assertEqual([(EVENT_TIME, 15), (EVENT_TIME, 50)], harness.timers("a"))
            self.assertEqual([b"a 15", b"b 30", b"watermark 30"], payloads(harness.watermark(30)))
            self.assertEqual([(EVENT_TIME, 50)], harness.timers("a"))
            self.assertEqual([], harness.timers("b"))
            self.assertEqual([b"a 50", b"watermark 9223372036854775807"], payloads(harness.end_input()))

    def test_processing_time_fires_the_timers_it_reaches_and_the_end_of_input_does_not(self):
        with StepHarness(Alarms) as harness:
            harness.process(Message(b"x", {"at": "2000"}, 0), key="a")
            harness.process(Message(b"y", {"at": "1000"}, 0), key="b")
            self.assertEqual([(EVENT_TIME, 10), (PROCESSING_TIME, 2000)], harness.timers("a"))
            self.assertEqual([], harness.set_processing_time(999))
            self.assertEqual([b"b processing 1000 after y"], payloads(harness.set_processing_time(1000)))
            harness.process(Message(b"z", {"at": "5000"}, 0), key="a")
            self.assertEqual([b"a event 10 after z", b"b event 10 after y"], payloads(harness.end_input()))
            self.assertEqual([(PROCESSING_TIME, 2000), (PROCESSING_TIME, 5000)], harness.timers("a"))

    def test_a_deleted_timer_does_not_fire_and_one_set_in_a_firing_the_watermark_reaches_fires_too(self):
        with StepHarness(Alarms) as harness:
            harness.process(Message(b"x", {}, 0), key="a")
            self.assertEqual([], harness.process(Message(b"cancel", {}, 0), key="a"))
            self.assertEqual([], harness.timers("a"))
            harness.process(Message(b"again", {}, 0), key="b")
            self.assertEqual([b"b event 10 after again", b"b event 15 after again once"],
                             payloads(harness.watermark(20)))

    def test_pending_timers_and_cells_are_carried_through_a_checkpoint(self):
        with StepHarness(Alarms) as first:
            first.process(Message(b"x", {"at": "500"}, 0), key_group=4, key="a")
            checkpoint = first.checkpoint()
        self.assertEqual([4], list(checkpoint))
        with StepHarness(Alarms) as restored:
            restored.restore(checkpoint)
            self.assertEqual([(EVENT_TIME, 10), (PROCESSING_TIME, 500)], restored.timers("a"))
            self.assertEqual([b"a processing 500 after x"], payloads(restored.set_processing_time(600)))
            self.assertEqual([b"a event 10 after x"], payloads(restored.watermark(10)))

    def test_a_firing_that_raises_fails_with_the_steps_exception_and_later_inputs_are_refused(self):
        with StepHarness(Alarms) as harness:
            harness.process(Message(b"fail", {}, 0), key="a")
            with self.assertRaisesRegex(Exception, "the firing fails"):
                harness.watermark(10)
            with self.assertRaisesRegex(RuntimeError, "the step already failed"):
                harness.watermark(11)

    def test_a_step_with_timers_is_keyed_and_sets_them_only_in_a_keyed_input(self):
        with self.assertRaisesRegex(TimersNotKeyed, "step 'marks' sets timers, but the harness is not keyed"):
            StepHarness(MarksWatermarks, name="marks", keyed=False)
        with StepHarness(SetsATimerOnWatermarks, name="marks") as harness:
            harness.process(Message(b"x", {}, 0), key="a")
            with self.assertRaisesRegex(TimerOutsideInput, "step 'marks': a timer is set outside a keyed record or a "
                                                           "firing"):
                harness.watermark(5)


if __name__ == "__main__":
    unittest.main()
