"""Timers in sessions (docs/protocol.md, "Timers"): a record's or a firing's timer changes answered as one TIMERS frame
before its end marker (none for an input that failed), TIMER inputs that run the step's on_timer with the key's cells
and hand its outputs through the steps after it, the refusal of a session that is not keyed, and the protocol
violations; over a real ring, and over the OpenSession and gRPC stream of a real worker."""
import struct
import unittest

import grpc

from flink_bridge import codec
from flink_bridge import layout as L
from flink_bridge._proto import data as data_pb2
from flink_bridge.sdk import Message
from flink_bridge.session import Session
from flink_bridge.timers import TimersNotKeyed
from tests import rings
from tests.test_cells_sessions import key_cells, keyed_record
from tests.test_control_plane import WorkerTest

ALARMS = [("alarms", "tests.segments.Alarms", "{}")]
EVENT, PROCESSING = data_pb2.TIME_DOMAIN_EVENT_TIME, data_pb2.TIME_DOMAIN_PROCESSING_TIME
SET, DELETE = data_pb2.TIMER_OP_SET, data_pb2.TIMER_OP_DELETE


def timer_body(key, timestamp, step=0, domain=EVENT):
    """A TIMER's body over shm: i32 key length, the key, the TimerFiring."""
    firing = data_pb2.TimerFiring(timestamp=timestamp, step=step, domain=domain).SerializeToString()
    return struct.pack("<i", len(key)) + key + firing


def changes(body):
    """A TIMERS body as (op, step, domain, timestamp) tuples."""
    return [(c.op, c.step, c.domain, c.timestamp) for c in data_pb2.TimerChanges.FromString(body).changes]


class TimersOverTheRingTest(unittest.TestCase):

    def serve(self, steps=ALARMS, dead_letter=(), fails=True):
        return rings.serve_keyed(self, steps, dead_letter, fails)

    @staticmethod
    def answers(found):
        return rings.readable(found, {L.TIMERS: changes})

    def test_a_records_timer_changes_come_in_order_as_one_timers_frame_before_its_end_marker(self):
        served = self.serve(fails=False)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"x", 100), 7)
        bridge.send(L.RECORD, 1, struct.pack("<i", 1) + b"a" + codec.encode(Message(b"y", {"at": "5000"}, 200)), 7)
        bridge.send(L.RECORD, 2, keyed_record(b"a", b"cancel", 100), 7)
        bridge.send(L.WATERMARK, 3, struct.pack("<q", 50))
        self.assertEqual([(L.OUTPUT, 0, b"x"), (L.TIMERS, 0, [(SET, 0, EVENT, 110)]), (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b"y"), (L.TIMERS, 1, [(SET, 0, EVENT, 210), (SET, 0, PROCESSING, 5000)]),
                          (L.END_OF_OUTPUTS, 1, b""),
                          (L.TIMERS, 2, [(DELETE, 0, EVENT, 110)]), (L.END_OF_OUTPUTS, 2, b""),
                          (L.END_OF_OUTPUTS, 3, b"")], self.answers(served.await_answers(9)))

    def test_a_timer_fires_with_its_keys_cells_and_its_outputs_pass_the_steps_after_it(self):
        served = self.serve([("alarms", "tests.segments.Alarms", "{}"), ("lines", "tests.segments.SplitsLines", "{}")],
                            fails=False)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"again", 100), 7)
        # The key is resident: no LOAD. Its firing sets another timer.
        bridge.send(L.TIMER, 1, timer_body(b"a", 110), 7)
        # A key not resident is loaded with the TIMER's sequence, as for a record.
        bridge.send(L.LOAD, 2, key_cells(b"b", c0=b"p\nq").SerializeToString())
        bridge.send(L.TIMER, 2, timer_body(b"b", 7000, domain=PROCESSING), 9)
        self.assertEqual([(L.OUTPUT, 0, b"again"), (L.TIMERS, 0, [(SET, 0, EVENT, 110)]), (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b"a event 110 after again"), (L.TIMERS, 1, [(SET, 0, EVENT, 115)]),
                          (L.END_OF_OUTPUTS, 1, b""),
                          (L.OUTPUT, 2, b"b processing 7000 after p"), (L.OUTPUT, 2, b"q"),
                          (L.END_OF_OUTPUTS, 2, b"")], self.answers(served.await_answers(9)))

    def test_the_firing_names_the_step_by_its_index_in_the_segment(self):
        served = self.serve([("echo", "tests.segments.Echo", "{}"), ("alarms", "tests.segments.AlarmsWithoutCells",
                                                                      "{}")], fails=False)
        served.bridge.send(L.RECORD, 0, keyed_record(b"k", b"x", 1), 3)
        served.bridge.send(L.TIMER, 1, timer_body(b"k", 11, step=1), 3)
        self.assertEqual([(L.TIMERS, 0, [(SET, 1, EVENT, 11)]), (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b"k 11"), (L.END_OF_OUTPUTS, 1, b"")],
                         self.answers(served.await_answers(4)))

    def test_a_failed_input_changes_no_timer(self):
        # "boom" sets a timer, then fails: sent to the dead letters, or failing the session.
        served = self.serve(dead_letter=[0])
        served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"boom", 1))
        served.bridge.send(L.RECORD, 1, keyed_record(b"a", b"x", 1))
        answers = self.answers(served.await_answers(4))
        self.assertEqual([(L.INPUT_FAILED, 0), (L.OUTPUT, 1), (L.TIMERS, 1), (L.END_OF_OUTPUTS, 1)],
                         [answer[:2] for answer in answers])
        served = self.serve()
        served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"boom", 1))
        answers = served.await_answers(1)
        self.assertEqual([(L.ERROR, 0)], [answer[:2] for answer in answers])
        self.assertIn("step 'alarms' (tests.segments.Alarms) failed: Refused: told to fail", answers[0][2].decode())

    def test_a_step_that_raises_in_on_timer_fails_the_session_whatever_its_on_error(self):
        served = self.serve(dead_letter=[0])
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0=b"fail").SerializeToString())
        bridge.send(L.TIMER, 0, timer_body(b"a", 10))
        bridge.send(L.WATERMARK, 1, struct.pack("<q", 10))
        answers = served.await_answers(2)
        self.assertEqual([(L.ERROR, 0), (L.ERROR, 1)], [answer[:2] for answer in answers])
        self.assertIn("step 'alarms' (tests.segments.Alarms) failed: Refused: the firing fails", answers[0][2].decode())
        self.assertIn("session already failed", answers[1][2].decode())

    def test_a_timer_of_a_key_not_resident_is_a_protocol_violation_naming_the_key(self):
        served = self.serve()
        served.bridge.send(L.TIMER, 0, timer_body("ü".encode(), 10))
        answers = served.await_answers(1)
        self.assertEqual((L.ERROR, 0), answers[0][:2])
        self.assertIn("protocol violation: the key 'ü' of timer input #0 is not resident: no LOAD for it came in this "
                      "session", answers[0][2].decode())

    def test_timer_inputs_that_break_the_protocol_fail_the_session_naming_the_cause(self):
        for name, steps, body, expected in (
                ("no timers declared", [("echo", "tests.segments.Echo", "{}")], timer_body(b"k", 1),
                 "protocol violation: a TIMER came (input #0), but the session's steps declared no timers"),
                ("step out of range", [("alarms", "tests.segments.AlarmsWithoutCells", "{}")],
                 timer_body(b"k", 1, step=1), "protocol violation: the TIMER of input #0 names step 1, but the "
                                              "segment has 1 step(s)"),
                ("a step without timers", [("echo", "tests.segments.Echo", "{}"),
                                           ("alarms", "tests.segments.AlarmsWithoutCells", "{}")],
                 timer_body(b"k", 1, step=0), "protocol violation: the TIMER of input #0 names step 0, which "
                                              "declared no timers (those that did: 1)"),
                ("unspecified domain", [("alarms", "tests.segments.AlarmsWithoutCells", "{}")],
                 timer_body(b"k", 1, domain=data_pb2.TIME_DOMAIN_UNSPECIFIED),
                 "protocol violation: the TIMER of input #0 has no time domain (TIME_DOMAIN_UNSPECIFIED)"),
                ("no TimerFiring", [("alarms", "tests.segments.AlarmsWithoutCells", "{}")],
                 struct.pack("<i", 1) + b"k" + b"\xff\xff", "protocol violation: the TIMER of input #0 carries no "
                                                           "TimerFiring message")):
            with self.subTest(name):
                served = self.serve(steps)
                served.bridge.send(L.TIMER, 0, body, 3)
                served.bridge.send(L.RECORD, 1, keyed_record(b"k", b"x"), 3)
                answers = served.await_answers(2)
                self.assertEqual([(L.ERROR, 0), (L.ERROR, 1)], [answer[:2] for answer in answers])
                self.assertIn(expected, answers[0][2].decode())

    def test_a_timer_set_on_a_watermark_fails_naming_the_step(self):
        served = self.serve([("marks", "tests.segments.SetsATimerOnWatermarks", "{}")])
        served.bridge.send(L.RECORD, 0, keyed_record(b"k", b"x"), 3)
        served.bridge.send(L.WATERMARK, 1, struct.pack("<q", 5))
        answers = served.await_answers(3)
        self.assertEqual([(L.TIMERS, 0), (L.END_OF_OUTPUTS, 0), (L.ERROR, 1)], [answer[:2] for answer in answers])
        self.assertIn("step 'marks': a timer is set outside a keyed record or a firing", answers[2][2].decode())

    def test_timer_changes_that_do_not_fit_one_frame_fail_the_input(self):
        # Frames of at most 2,048 bytes: 200 changes take more.
        served = self.serve([("many", "tests.segments.ManyTimers", '{"count": 200}')])
        served.bridge.send(L.RECORD, 0, keyed_record(b"k", b"x"))
        answers = served.await_answers(1)
        self.assertEqual([(L.ERROR, 0)], [answer[:2] for answer in answers])
        self.assertIn("the steps made 200 timer change(s) in input #0", answers[0][2].decode())


class TimerDeclarationsTest(unittest.TestCase):

    def test_a_session_that_is_not_keyed_whose_steps_set_timers_is_refused_naming_the_step(self):
        with self.assertRaisesRegex(TimersNotKeyed, "step 'alarms' sets timers, but the session is not keyed: a timer "
                                                    "belongs to the key of the input that sets it"):
            Session("s", [("echo", "tests.segments.Echo", "{}"), ("alarms", "tests.segments.AlarmsWithoutCells",
                                                                   "{}")])

    def test_a_step_that_declares_timers_needs_an_on_timer(self):
        with self.assertRaisesRegex(ValueError, "step 'lazy' declares timers, but has no on_timer\\(timestamp, "
                                                "domain\\)"):
            Session("s", [("lazy", "tests.segments.TimersWithoutOnTimer", "{}")], keyed=True)

    def test_a_session_says_whether_its_steps_set_timers(self):
        self.assertTrue(Session("s", ALARMS, keyed=True).declared_timers)
        self.assertFalse(Session("s", [("echo", "tests.segments.Echo", "{}")], keyed=True).declared_timers)


class TimersOverGrpcTest(WorkerTest):
    """OpenSession says whether the steps set timers, or refuses them; the stream carries TIMER inputs and TIMERS."""

    def open(self, steps, keyed):
        return self.worker.open_session(steps, keyed)

    def exchange(self, steps, batch):
        """The answer frames to one input batch, on a new keyed session of ``steps``."""
        return self.worker.exchange(self.open(steps, keyed=True).session_id, batch)

    def test_open_session_says_whether_the_steps_set_timers(self):
        self.assertTrue(self.open(ALARMS, keyed=True).timers)
        self.assertFalse(self.open([("counts", "tests.segments.CountsPerKey", "{}")], keyed=True).timers)

    def test_a_session_that_is_not_keyed_with_timers_is_refused_with_failed_precondition(self):
        with self.assertRaises(grpc.RpcError) as refused:
            self.open([("alarms", "tests.segments.AlarmsWithoutCells", "{}")], keyed=False)
        self.assertEqual(grpc.StatusCode.FAILED_PRECONDITION, refused.exception.code())
        self.assertIn("step 'alarms' sets timers, but the session is not keyed", refused.exception.details())

    def test_records_answer_with_their_timer_changes_and_timers_fire_with_their_key(self):
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.LOAD, sequence=0, cells=key_cells(b"a"))
        record = batch.frames.add(type=data_pb2.RECORD, sequence=0, key=b"a", key_group=3).record
        record.payload, record.timestamp = b"again", 100
        record.headers["at"] = "5000"
        batch.frames.add(type=data_pb2.TIMER, sequence=1, key=b"a", key_group=3,
                         firing=data_pb2.TimerFiring(timestamp=110, step=0, domain=EVENT))
        batch.frames.add(type=data_pb2.LOAD, sequence=2, cells=key_cells(b"b", c0=b"old"))
        batch.frames.add(type=data_pb2.TIMER, sequence=2, key=b"b", key_group=4,
                         firing=data_pb2.TimerFiring(timestamp=5000, step=0, domain=PROCESSING))
        batch.frames.add(type=data_pb2.TIMER, sequence=3, key=b"a", key_group=3,
                         firing=data_pb2.TimerFiring(timestamp=1, step=0))
        frames = self.exchange(ALARMS, batch)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.TIMERS, 0), (data_pb2.END_OF_OUTPUTS, 0),
                          (data_pb2.OUTPUT, 1), (data_pb2.TIMERS, 1), (data_pb2.END_OF_OUTPUTS, 1),
                          (data_pb2.OUTPUT, 2), (data_pb2.END_OF_OUTPUTS, 2), (data_pb2.ERROR, 3)],
                         [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual([(SET, 0, EVENT, 110), (SET, 0, PROCESSING, 5000)],
                         changes(frames[1].timers.SerializeToString()))
        self.assertEqual(b"a event 110 after again", frames[3].record.payload)
        self.assertEqual([(SET, 0, EVENT, 115)], changes(frames[4].timers.SerializeToString()))
        self.assertEqual(b"b processing 5000 after old", frames[6].record.payload)
        self.assertIn("protocol violation: the TIMER of input #3 has no time domain (TIME_DOMAIN_UNSPECIFIED)",
                      frames[8].error)

    def test_a_timer_in_a_session_without_timers_is_a_protocol_violation(self):
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.TIMER, sequence=0, key=b"a", key_group=3,
                         firing=data_pb2.TimerFiring(timestamp=1, step=0, domain=EVENT))
        frames = self.exchange([("echo", "tests.segments.Echo", "{}")], batch)
        self.assertEqual([(data_pb2.ERROR, 0)], [(frame.type, frame.sequence) for frame in frames])
        self.assertIn("protocol violation: a TIMER came (input #0), but the session's steps declared no timers",
                      frames[0].error)


if __name__ == "__main__":
    unittest.main()
