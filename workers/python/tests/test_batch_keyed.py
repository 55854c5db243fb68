"""The built-in ``batch`` in a keyed session (protocol 6) keeps each key's open batch in the value cell ``batch``
(encoded as its whole-instance state encodes one batch) and closes it by timers (docs/steps.md): a processing-time timer
at the batch's first record's clock + max_wait_ms, an event-time one at the largest long (the end of input), both
deleted when max_count closes it, the other deleted when one fires. In a session that is not keyed it is unchanged (the
golden vectors hold it there)."""
import struct
import unittest

from flink_bridge import sdk
from flink_bridge._proto import data as data_pb2
from flink_bridge.cells import VALUE
from flink_bridge.sdk import EVENT_TIME, PROCESSING_TIME, Message
from flink_bridge.session import Session
from flink_bridge.testing import StepHarness
from flink_bridge.timers import DELETE, SET
from tests.test_cells_sessions import key_cells
from tests.test_running_count_cells import Answers

END = 2 ** 63 - 1
CONFIG = {"max_count": 3, "max_wait_ms": 1000}


def payloads(outputs):
    return [output.payload for output in outputs]


def record(payload, timestamp=0, **headers):
    return Message(payload, headers, timestamp)


def one_batch(opened_at, messages):
    """One batch as the whole-instance state encodes it: version 2, opened-at time, count, then each record
    (timestamp, header count, each header's key and value, payload; lengths as big-endian ints)."""
    def text(value):
        return struct.pack(">i", len(value)) + value
    out = bytes([2]) + struct.pack(">qi", opened_at, len(messages))
    for message in messages:
        out += struct.pack(">qi", message.timestamp, len(message.headers))
        for key, value in message.headers.items():
            out += text(key.encode()) + text(value.encode())
        out += text(message.payload)
    return out


def segment_state(step):
    """A segment of one step's state as a session snapshots it: the step count, the state's length, the state."""
    return struct.pack(">ii", 1, len(step)) + step


def timer_changes(answer):
    """An answer of ``Answers``, a TIMERS one's changes as (op, step, domain, timestamp) each."""
    kind, sequence, what = answer
    if kind != "timers":
        return answer
    return kind, sequence, [(change.op, change.step, change.domain, change.timestamp) for change in what.changes]


class KeyedBatchHarnessTest(unittest.TestCase):

    def test_a_quiet_keys_batch_closes_when_processing_time_passes_max_wait(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(10_000)
            self.assertEqual([], harness.process(record(b"1", 5, user="a"), key="a"))
            self.assertEqual([(EVENT_TIME, END), (PROCESSING_TIME, 11_000)], harness.timers("a"))
            harness.set_processing_time(10_500)
            self.assertEqual([], harness.process(record(b'"two"', 7), key="a"))
            self.assertEqual([], harness.set_processing_time(10_999))
            closed = harness.set_processing_time(11_000)
            self.assertEqual([Message(b'[1,"two"]', {"user": "a", "batch_size": "2"}, 7)], closed)
            # The firing deleted the event-time timer and cleared the cell.
            self.assertEqual([], harness.timers("a"))
            self.assertEqual({"batch": None}, harness.cells("a"))
            self.assertEqual([], harness.end_input())

    def test_the_cell_holds_the_open_batch_as_the_whole_instance_state_encodes_one(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(42)
            first, second = record(b"x", 3, h="1"), record(b"{}", 4)
            harness.process(first, key="a")
            harness.process(second, key="a")
            self.assertEqual({"batch": one_batch(42, [first, second])}, harness.cells("a"))
            with StepHarness("batch", CONFIG, keyed=False) as whole:
                whole.set_processing_time(42)
                whole.process(first)
                whole.process(second)
                self.assertEqual({-1: segment_state(one_batch(42, [first, second]))}, dict(whole.checkpoint()))
            self.assertEqual({}, dict(harness.checkpoint()), "no whole-instance state in a keyed session")

    def test_max_count_closes_the_batch_at_once_and_deletes_both_timers(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(100)
            harness.process(record(b"1", 1), key="a")
            harness.process(record(b"2", 2), key="a")
            self.assertEqual([b"[1,2,3]"], payloads(harness.process(record(b"3", 3), key="a")))
            self.assertEqual([], harness.timers("a"))
            self.assertEqual({"batch": None}, harness.cells("a"))
            self.assertEqual([], harness.set_processing_time(5_000))
            self.assertEqual([], harness.end_input())

    def test_the_end_of_input_emits_open_batches_through_the_event_time_timer(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(0)
            harness.process(record(b"1", 1), key="b", key_group=9)
            harness.process(record(b"2", 2), key="a", key_group=3)
            self.assertEqual([], harness.watermark(10_000), "a watermark does nothing in a keyed session")
            self.assertEqual([b"[2]", b"[1]"], payloads(harness.end_input()))
            self.assertEqual([], harness.timers("a"), "the firing deleted the processing-time timer")
            self.assertEqual([], harness.timers("b"))

    def test_two_keys_batch_separately(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(0)
            harness.process(record(b"1"), key="a", key_group=3)
            harness.set_processing_time(600)
            harness.process(record(b"10"), key="b", key_group=3)
            harness.process(record(b"2"), key="a", key_group=3)
            self.assertEqual([(EVENT_TIME, END), (PROCESSING_TIME, 1_600)], harness.timers("b"))
            self.assertEqual([b"[1,2]"], payloads(harness.set_processing_time(1_000)))
            harness.process(record(b"11"), key="b", key_group=3)
            self.assertEqual([b"[10,11,12]"], payloads(harness.process(record(b"12"), key="b", key_group=3)))
            self.assertEqual([], harness.set_processing_time(2_000))

    def test_a_checkpoint_mid_batch_keeps_the_batch_and_its_timers(self):
        with StepHarness("batch", CONFIG, keyed=True) as first:
            first.set_processing_time(1_000)
            first.process(record(b"1", 1), key="a", key_group=4)
            first.process(record(b"2", 2), key="a", key_group=4)
            checkpoint = first.checkpoint()
        with StepHarness("batch", CONFIG, keyed=True) as restored:
            restored.restore(checkpoint)
            self.assertEqual([(EVENT_TIME, END), (PROCESSING_TIME, 2_000)], restored.timers("a"))
            restored.set_processing_time(1_500)
            self.assertEqual([b"[1,2,3]"], payloads(restored.process(record(b"3", 3), key="a", key_group=4)))
            self.assertEqual([], restored.timers("a"))
        with StepHarness("batch", CONFIG) as restored:
            # Undecided, a checkpoint with cells and timers makes the harness keyed.
            restored.restore(checkpoint)
            self.assertEqual([b"[1,2]"], payloads(restored.set_processing_time(2_000)))
            self.assertEqual([], restored.timers("a"))
            self.assertEqual([], restored.end_input())
        with StepHarness("batch", CONFIG) as restored:
            restored.restore(checkpoint)
            self.assertEqual([b"[1,2]"], payloads(restored.end_input()))
            self.assertEqual([], restored.timers("a"), "the event-time firing deleted the processing-time timer")

    def test_its_processing_time_is_the_sessions_clock_not_the_process_clock(self):
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.set_processing_time(7)
            harness.process(record(b"1"), key="a")
            self.assertEqual([(EVENT_TIME, END), (PROCESSING_TIME, 1_007)], harness.timers("a"))
        self.assertGreater(sdk.current_time_millis(), 1_000_000)

    def test_records_without_keys_make_the_harness_not_keyed_as_before(self):
        with StepHarness("batch", CONFIG) as harness:
            harness.set_processing_time(0)
            harness.process(record(b"1"))
            self.assertEqual([], harness.watermark(1))
            self.assertEqual([], harness.set_processing_time(5_000), "no timer: the next input closes the aged batch")
            self.assertEqual([b"[1]"], payloads(harness.watermark(2)))

    def test_a_whole_instance_batch_restored_into_a_keyed_session_is_refused_naming_the_step(self):
        state = segment_state(one_batch(0, [record(b"1")]))
        with StepHarness("batch", CONFIG, name="gather", keyed=True) as harness:
            with self.assertRaisesRegex(ValueError, "step 'gather' \\(batch\\): the checkpoint holds a whole-instance "
                                                    "open batch of 1 record\\(s\\), but in a keyed session batch keeps "
                                                    "each key's batch in a cell since protocol 6"):
                harness.restore({3: state})
        # An empty one (a keyed session's before protocol 6 with no batch open) restores.
        with StepHarness("batch", CONFIG, keyed=True) as harness:
            harness.restore({3: segment_state(one_batch(5, []))})
            self.assertEqual({}, dict(harness.checkpoint()))

    def test_a_cell_it_cannot_read_fails_the_record_naming_the_step(self):
        with StepHarness("batch", CONFIG, name="gather", keyed=True) as harness:
            harness.load_cells("a", {"batch": b"\x02\x00"})
            with self.assertRaisesRegex(ValueError, "step 'gather' \\(batch\\): cell 'batch' state ends early"):
                harness.process(record(b"1"), key="a")


class KeyedBatchSessionTest(unittest.TestCase):
    """In a worker session: the cell and the timers are declared, and each change answers its input."""

    def test_a_keyed_session_declares_the_cell_and_timers_answers_their_changes_and_fires_them(self):
        steps = [("first", "append_field", "{}"), ("gather", "batch", '{"max_count": 3, "max_wait_ms": 50}')]
        keyed = Session("s", steps, keyed=True)
        self.assertEqual([(1, "gather", "batch", VALUE, 0)],
                         [(spec.step_index, spec.step, spec.name, spec.kind, spec.ttl_ms)
                          for spec in keyed.declared_cells])
        self.assertTrue(keyed.timers.declared)
        answers = Answers()
        item = b'{"processed":true}'
        try:
            keyed.clock(0, 100, answers)
            keyed.load(1, key_cells(b"k"))
            for sequence in (1, 2, 3, 4):
                keyed.record(sequence, 3, record(b"{}", sequence), answers, b"k")
            keyed.clock(5, 150, answers)
            # Open max_wait_ms, its timer not fired yet: a record joins the batch.
            keyed.record(6, 3, record(b"{}", 6), answers, b"k")
            keyed.timer(7, 3, b"k", data_pb2.TimerFiring(timestamp=150, step=1, domain=PROCESSING_TIME), answers)
        finally:
            sdk.stamp_clock(None)
        opened = [(SET, 1, PROCESSING_TIME, 150), (SET, 1, EVENT_TIME, END)]
        self.assertEqual([("timers", 1, opened), ("end", 1, None), ("end", 2, None),
                          ("output", 3, b"[" + b",".join([item] * 3) + b"]"),
                          ("timers", 3, [(DELETE, 1, PROCESSING_TIME, 150), (DELETE, 1, EVENT_TIME, END)]),
                          ("end", 3, None),
                          ("timers", 4, opened), ("end", 4, None), ("end", 5, None), ("end", 6, None),
                          ("output", 7, b"[" + item + b"," + item + b"]"),
                          ("timers", 7, [(DELETE, 1, EVENT_TIME, END)]),
                          ("end", 7, None)], [timer_changes(answer) for answer in answers.answers[1:]])
        not_keyed = Session("s", steps)
        self.assertEqual([], not_keyed.declared_cells)
        self.assertFalse(not_keyed.timers.declared)


if __name__ == "__main__":
    unittest.main()
