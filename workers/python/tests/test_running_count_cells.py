"""The built-in ``running_count`` in a keyed session (protocol 5) keeps each of its keys' counts in one map cell,
``counts``, of the session's key (entry: its key as UTF-8 -> the count as an i64 little-endian), and no whole-instance
state; it refuses to restore the whole-instance counts of a checkpoint taken before. In a session that is not keyed
it is unchanged (the golden vectors hold it there)."""
import json
import struct
import tempfile
import unittest

import grpc

from flink_bridge import codec
from flink_bridge import layout as L
from flink_bridge._proto import control as control_pb2
from flink_bridge._proto import data as data_pb2
from flink_bridge.cells import MAP
from flink_bridge.sdk import Message
from flink_bridge.session import Session
from flink_bridge.testing import StepHarness
from tests import rings
from tests.test_cells_sessions import PUT, key_cells, resident, writes
from tests.test_control_plane import SECRET, WorkerTest

CONFIG = {"key_header": "user"}
STEPS = [("count", "running_count", json.dumps(CONFIG))]


def i64(count):
    return struct.pack("<q", count)


def user(name, timestamp=0):
    return Message(b"{}", {"user": name}, timestamp)


def counted(key, count):
    return json.dumps({"key": key, "count": count}, separators=(",", ":"), ensure_ascii=False).encode()


def whole_instance_state(counts):
    """A segment of running_count alone, as a session that is not keyed (or a checkpoint from before protocol 5)
    snapshots it: the step count, the step state's length, then version 2, the number of counts, each key
    (length, UTF-8) and count (big-endian)."""
    step = bytes([2]) + struct.pack(">i", len(counts)) + b"".join(
        struct.pack(">i", len(key.encode())) + key.encode() + struct.pack(">q", count) for key, count in counts.items())
    return struct.pack(">ii", 1, len(step)) + step


class Answers:
    """What a session answers, as (kind, sequence, what)."""

    def __init__(self):
        self.answers = []
        self.cell_frame_bytes = 1 << 20
        self.timer_frame_bytes = 1 << 20

    def output(self, message):
        self.answers.append(("output", self.sequence, message.payload))

    def end_of_outputs(self, sequence):
        self.answers.append(("end", sequence, None))

    def error(self, sequence, text):
        self.answers.append(("error", sequence, text))

    def cell_writes(self, key_cells_message):
        self.answers.append(("cells", None, key_cells_message))

    def timers(self, timer_changes):
        self.answers.append(("timers", self.sequence, timer_changes))


class KeyedSessionTest(unittest.TestCase):

    def test_running_count_declares_one_map_cell_counts_without_ttl_in_a_keyed_session_only(self):
        keyed = Session("s", STEPS, keyed=True)
        self.assertEqual([(0, "count", "counts", MAP, 0)],
                         [(spec.step_index, spec.step, spec.name, spec.kind, spec.ttl_ms)
                          for spec in keyed.declared_cells])
        # Not keyed: no cell, so the session is not refused.
        self.assertEqual([], Session("s", STEPS).declared_cells)

    def test_counts_go_on_from_the_loaded_cell_and_are_written_back_at_the_barrier(self):
        session = Session("s", STEPS + [("then", "append_field", "{}")], keyed=True)
        answers = Answers()
        session.load(0, key_cells(b"a", c0={b"a": i64(5)}))
        session.record(0, 3, user("a"), answers, b"a")
        session.record(1, 3, user("a"), answers, b"a")
        session.load(2, key_cells(b"b"))
        session.record(2, 9, user("b"), answers, b"b")
        session.barrier(3, answers)
        self.assertEqual([("output", 0, b'{"key":"a","count":6,"processed":true}'), ("end", 0, None),
                          ("output", 1, b'{"key":"a","count":7,"processed":true}'), ("end", 1, None),
                          ("output", 2, b'{"key":"b","count":1,"processed":true}'), ("end", 2, None)],
                         answers.answers[:6])
        cell_writes = [message for kind, _, message in answers.answers[6:-1]]
        self.assertEqual([(b"a", [(0, PUT, i64(7), b"a")]), (b"b", [(0, PUT, i64(1), b"b")])],
                         [writes(message.SerializeToString()) for message in cell_writes])
        self.assertEqual([1 + 8, 1 + 8], [message.resident_bytes for message in cell_writes])
        self.assertEqual(("end", 3, None), answers.answers[-1])
        self.assertEqual({}, session.snapshot(), "in a keyed session running_count keeps no whole-instance state")

    def test_its_own_key_is_the_entry_of_the_sessions_keys_map(self):
        # The session is keyed by project; running_count counts by user within it.
        session = Session("s", STEPS, keyed=True)
        answers = Answers()
        session.load(0, key_cells(b"p1", c0={"ü".encode(): i64(2)}))
        session.record(0, 3, user("ü"), answers, b"p1")
        session.record(1, 3, user("x"), answers, b"p1")
        session.barrier(2, answers)
        self.assertEqual([counted("ü", 3), counted("x", 1)],
                         [payload for kind, _, payload in answers.answers if kind == "output"])
        (message,) = [message for kind, _, message in answers.answers if kind == "cells"]
        self.assertEqual((b"p1", [(0, PUT, i64(3), "ü".encode()), (0, PUT, i64(1), b"x")]),
                         writes(message.SerializeToString()))
        self.assertEqual(2 + 8 + 1 + 8, message.resident_bytes)

    def test_a_count_that_is_no_i64_fails_the_record_naming_the_step_and_key(self):
        session = Session("s", STEPS, keyed=True)
        answers = Answers()
        session.load(0, key_cells(b"a", c0={b"a": b"5"}))
        with self.assertLogs("flink_bridge", "WARNING"):
            session.record(0, 3, user("a"), answers, b"a")
        ((kind, sequence, text),) = answers.answers
        self.assertEqual(("error", 0), (kind, sequence))
        self.assertIn("step 'count' (running_count): the count of key \"a\" in its cell 'counts' is 1 bytes, not an "
                      "8-byte i64", text)

    def test_restoring_whole_instance_counts_into_a_keyed_session_is_refused_naming_the_step(self):
        session = Session("s", STEPS, keyed=True)
        with self.assertRaises(ValueError) as refused:
            session.restore({3: whole_instance_state({"a": 4, "b": 1})})
        self.assertIn("step 'count' (running_count): the checkpoint holds whole-instance counts of 2 key(s), but in "
                      "a keyed session running_count keeps its counts in cells since protocol 5, so a checkpoint "
                      "taken before that cannot be restored into it", str(refused.exception))
        # Pieces without counts (another step's state, an empty one) restore.
        Session("s", STEPS, keyed=True).restore({3: b"", 4: whole_instance_state({})})

    def test_a_segment_whose_other_step_keeps_cells_too_restores_and_counts_from_the_cells(self):
        steps = STEPS + [("batch", "batch", '{"max_count": 2}')]
        session = Session("s", steps, keyed=True)
        answers = Answers()
        session.load(0, key_cells(b"a", c0={b"a": i64(5)}))
        session.record(0, 3, user("a"), answers, b"a")
        # In a keyed session batch keeps the key's open batch in its cell 'batch' (c1): no piece is left.
        self.assertEqual({}, session.snapshot())
        session.barrier(1, answers)
        written = {write.cell: write.value for kind, _, message in answers.answers if kind == "cells"
                   for write in message.writes}
        restored = Session("s", steps, keyed=True)
        restored.restore({})
        restored.load(0, key_cells(b"a", c0={b"a": i64(6)}, c1=written[1]))
        restored.record(0, 3, user("a"), answers, b"a")
        self.assertEqual(("output", 0, b"[" + counted("a", 6) + b"," + counted("a", 7) + b"]"), answers.answers[-3])
        self.assertEqual("timers", answers.answers[-2][0])

    def test_not_keyed_it_keeps_and_restores_its_whole_instance_state_as_before(self):
        session = Session("s", STEPS)
        answers = Answers()
        session.record(0, 3, user("a"), answers)
        session.record(1, 3, user("a"), answers)
        self.assertEqual({3: whole_instance_state({"a": 2})}, session.snapshot())
        restored = Session("s", STEPS)
        restored.restore(session.snapshot())
        restored.record(0, 3, user("a"), answers)
        self.assertEqual(counted("a", 3), answers.answers[-2][2])


class KeyedSessionOverTheRingTest(unittest.TestCase):

    def test_a_loaded_count_goes_on_and_the_barrier_writes_it_back(self):
        served = rings.ServedRing(tempfile.mkdtemp(), Session("session t", STEPS, keyed=True))
        self.addCleanup(served.stop)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0={b"a": i64(5)}).SerializeToString())
        bridge.send(L.RECORD, 0, struct.pack("<i", 1) + b"a" + codec.encode(user("a", 7)), 3)
        bridge.send(L.BARRIER, 1, struct.pack("<q", 1))
        answers = served.await_answers(4)
        self.assertEqual([(L.OUTPUT, 0), (L.END_OF_OUTPUTS, 0), (L.CELL_WRITES, 1), (L.END_OF_OUTPUTS, 1)],
                         [(frame_type, sequence) for frame_type, sequence, _ in answers])
        self.assertEqual(Message(counted("a", 6), {"key": "a"}, 7), codec.decode(answers[0][2], 0, len(answers[0][2])))
        self.assertEqual((b"a", [(0, PUT, i64(6), b"a")]), writes(answers[2][2]))
        self.assertEqual((b"a", 1 + 8), resident(answers[2][2]))


class KeyedSessionOverGrpcTest(WorkerTest):
    """A real worker: OpenSession lists the cell; LOAD, RECORD and BARRIER over the gRPC stream; RestoreState of a
    checkpoint from before protocol 5 refused."""

    def open(self, keyed):
        return self.worker.open_session(STEPS, keyed)

    def test_open_session_lists_the_counts_cell_of_a_keyed_session(self):
        self.assertEqual([("count", "counts", control_pb2.CELL_KIND_MAP, 0)],
                         [(cell.step, cell.name, cell.kind, cell.ttl_ms) for cell in self.open(True).cells])
        self.assertEqual([], list(self.open(False).cells))

    def test_a_loaded_count_goes_on_and_the_barrier_writes_it_back(self):
        opened = self.open(True)
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.LOAD, sequence=0, cells=key_cells(b"a", c0={b"a": i64(5)}))
        record = batch.frames.add(type=data_pb2.RECORD, sequence=0, key=b"a", key_group=3).record
        record.payload, record.headers["user"] = b"{}", "a"
        batch.frames.add(type=data_pb2.LOAD, sequence=1, cells=key_cells(b"new"))
        record = batch.frames.add(type=data_pb2.RECORD, sequence=1, key=b"new", key_group=3).record
        record.payload, record.headers["user"] = b"{}", "new"
        batch.frames.add(type=data_pb2.BARRIER, sequence=2, checkpoint_id=1)
        frames = self.worker.exchange(opened.session_id, batch)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.OUTPUT, 1),
                          (data_pb2.END_OF_OUTPUTS, 1), (data_pb2.CELL_WRITES, 2), (data_pb2.CELL_WRITES, 2),
                          (data_pb2.END_OF_OUTPUTS, 2)], [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual((counted("a", 6), {"key": "a"}), (frames[0].record.payload, dict(frames[0].record.headers)))
        self.assertEqual(counted("new", 1), frames[2].record.payload)
        self.assertEqual([(b"a", [(0, PUT, i64(6), b"a")]), (b"new", [(0, PUT, i64(1), b"new")])],
                         [writes(frame.cells.SerializeToString()) for frame in frames[4:6]])
        self.assertEqual([1 + 8, 3 + 8], [frame.cells.resident_bytes for frame in frames[4:6]])

    def test_restore_state_of_whole_instance_counts_into_a_keyed_session_is_refused(self):
        opened = self.open(True)
        with self.assertRaises(grpc.RpcError) as refused:
            self.worker.channel.stream_unary(
                "/flinkbridge.v1.BridgeControl/RestoreState", request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=control_pb2.Ack.FromString)(
                    iter([control_pb2.RestoreStateRequest(session_id=opened.session_id, states=[
                        control_pb2.KeyGroupState(key_group=3, state=whole_instance_state({"a": 4}))])]),
                    metadata=(("flink-bridge-secret", SECRET),), timeout=30)
        self.assertIn("step 'count' (running_count): the checkpoint holds whole-instance counts of 1 key(s), but in a "
                      "keyed session running_count keeps its counts in cells since protocol 5",
                      refused.exception.details())


class HarnessTest(unittest.TestCase):
    """The StepHarness runs running_count with cells when its records come with their keys, as a keyed session."""

    def test_records_with_their_keys_count_in_the_counts_cell(self):
        with StepHarness("running_count", CONFIG) as harness:
            harness.load_cells("a", {"counts": {b"a": i64(5)}})
            self.assertEqual([counted("a", 6)], [m.payload for m in harness.process(user("a"), key="a")])
            self.assertEqual([counted("b", 1)], [m.payload for m in harness.process(user("b"), 3, key="p")])
            self.assertEqual({"counts": {b"a": i64(6)}}, harness.cells("a"))
            self.assertEqual({"counts": {b"b": i64(1)}}, harness.cells("p"))
            self.assertEqual({}, harness.checkpoint())
            with self.assertRaisesRegex(ValueError, "the step declares cells \\(counts\\): give process\\(\\) the "
                                                    "record's key"):
                harness.process(user("a"))

    def test_records_without_keys_count_in_whole_instance_state_as_before(self):
        with StepHarness("running_count", CONFIG) as harness:
            harness.process(user("a"), 3)
            self.assertEqual({3: whole_instance_state({"a": 1})}, harness.checkpoint())
            self.assertEqual({}, harness.cells("a"))
            with self.assertRaisesRegex(ValueError, "step 'running_count' \\(running_count\\) runs as in a session "
                                                    "that is not keyed \\(its first record came without a key\\)"):
                harness.process(user("a"), 3, key="a")

    def test_a_keyed_harness_refuses_whole_instance_counts_as_a_keyed_session_does(self):
        with StepHarness("running_count", CONFIG, keyed=True) as harness:
            with self.assertRaisesRegex(ValueError, "in a keyed session running_count keeps its counts in cells"):
                harness.restore({3: whole_instance_state({"a": 1})})
        with StepHarness("running_count", CONFIG) as harness:
            # Undecided, a restore of whole-instance counts makes the harness not keyed.
            harness.restore({3: whole_instance_state({"a": 1})})
            self.assertEqual([counted("a", 2)], [m.payload for m in harness.process(user("a"), 3)])


if __name__ == "__main__":
    unittest.main()
