"""Cells in sessions (docs/protocol.md, "Cells: per-key state in Flink's keyed state"): keyed records with their key,
LOADs that make a key resident, a barrier answered with the changed cells (and what each key's cells take) before
its end marker, keys a barrier evicts, TTLs on the bridge's clock, what a record sent to the dead letters changed,
and the protocol violations; over a real ring, and over the OpenSession and gRPC stream of a real worker."""
import struct
import unittest

import grpc

from flink_bridge import codec, sdk
from flink_bridge import layout as L
from flink_bridge._proto import control as control_pb2
from flink_bridge._proto import data as data_pb2
from flink_bridge.cells import CellsNotKeyed
from flink_bridge.sdk import Message
from flink_bridge.session import Session
from tests import rings
from tests.test_control_plane import WorkerTest

COUNTS = [("counts", "tests.segments.CountsPerKey", "{}")]
SET, CLEAR, PUT, REMOVE = (data_pb2.CELL_OP_SET, data_pb2.CELL_OP_CLEAR, data_pb2.CELL_OP_PUT,
                           data_pb2.CELL_OP_REMOVE)


def keyed_record(key, payload, timestamp=0):
    """A keyed RECORD's body over shm: i32 key length, the key, the record body."""
    return struct.pack("<i", len(key)) + key + codec.encode(Message(payload, {}, timestamp))


def key_cells(key, **contents):
    """A KeyCells message of a LOAD: cell id (as c<id>) to a value (bytes) or entries (a dict)."""
    message = data_pb2.KeyCells(key=key)
    for name, content in contents.items():
        cell = message.cells.add(cell=int(name[1:]))
        if isinstance(content, dict):
            for entry_key, value in content.items():
                cell.entries.add(key=entry_key, value=value)
        else:
            cell.value = content
    return message


def writes(body):
    """A CELL_WRITES body as (key, [(cell, op, value, entry key)])."""
    message = data_pb2.KeyCells.FromString(body)
    return message.key, [(w.cell, w.op, w.value, w.entry_key) for w in message.writes]


def resident(body):
    """A CELL_WRITES body's key and resident_bytes."""
    message = data_pb2.KeyCells.FromString(body)
    return message.key, message.resident_bytes


def barrier(checkpoint_id, *evict, lengths=None):
    """A BARRIER's body over shm: the checkpoint id, then each key to evict after its i32 length (``lengths``: the
    lengths to write instead, for a corrupt frame)."""
    lengths = lengths or [len(key) for key in evict]
    return struct.pack("<q", checkpoint_id) + b"".join(struct.pack("<i", length) + key
                                                       for length, key in zip(lengths, evict))


class CellsOverTheRingTest(unittest.TestCase):

    def serve(self, steps=COUNTS, dead_letter=(), fails=True):
        return rings.serve_keyed(self, steps, dead_letter, fails)

    def outputs(self, answers):
        return rings.readable(answers, {L.CELL_WRITES: writes})

    def test_loaded_cells_are_read_and_what_changed_is_written_back_at_the_barrier(self):
        served = self.serve(fails=False)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0=b"41", c1={b"old": b"1"}).SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"), 7)
        bridge.send(L.LOAD, 1, key_cells(b"b").SerializeToString())
        bridge.send(L.RECORD, 1, keyed_record(b"b", b"y"), 9)
        bridge.send(L.RECORD, 2, keyed_record(b"a", b"z"), 7)
        bridge.send(L.BARRIER, 3, struct.pack("<q", 1))
        bridge.send(L.BARRIER, 4, struct.pack("<q", 2))
        answers = served.await_answers(10)
        self.assertEqual([(L.OUTPUT, 0, b"a=42"), (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b"b=1"), (L.END_OF_OUTPUTS, 1, b""),
                          (L.OUTPUT, 2, b"a=43"), (L.END_OF_OUTPUTS, 2, b""),
                          (L.CELL_WRITES, 3, (b"a", [(0, SET, b"43", b""), (1, PUT, b"42", b"x"),
                                                     (1, PUT, b"43", b"z")])),
                          (L.CELL_WRITES, 3, (b"b", [(0, SET, b"1", b""), (1, PUT, b"1", b"y")])),
                          (L.END_OF_OUTPUTS, 3, b""),
                          (L.END_OF_OUTPUTS, 4, b"")], self.outputs(answers))
        # a: the count "43", and the entries old=1, x=42, z=43; b: "1" and y=1.
        self.assertEqual([(b"a", 2 + 4 + 3 + 3), (b"b", 1 + 2)],
                         [resident(body) for frame_type, _, body in answers if frame_type == L.CELL_WRITES])

    def test_a_record_whose_key_was_not_loaded_is_a_protocol_violation_naming_the_key(self):
        served = self.serve()
        served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        served.bridge.send(L.RECORD, 1, keyed_record("ü".encode(), b"x"))
        answers = served.await_answers(3)
        self.assertEqual((L.ERROR, 1), answers[2][:2])
        self.assertIn("protocol violation: the key 'ü' of record input #1 is not resident: no LOAD for it came in "
                      "this session", answers[2][2].decode())

    def test_a_load_that_is_no_key_cells_message_fails_its_record(self):
        served = self.serve()
        served.bridge.send(L.LOAD, 0, b"\xff\xff\xff")
        served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        answers = served.await_answers(1)
        self.assertEqual((L.ERROR, 0), answers[0][:2])
        self.assertIn("protocol violation: the LOAD of input #0 is no KeyCells message", answers[0][2].decode())

    def test_a_load_naming_a_cell_the_steps_did_not_declare_fails_its_record(self):
        served = self.serve()
        served.bridge.send(L.LOAD, 5, key_cells(b"a", c2=b"x").SerializeToString())
        served.bridge.send(L.RECORD, 5, keyed_record(b"a", b"x"))
        served.bridge.send(L.BARRIER, 6, struct.pack("<q", 1))
        answers = served.await_answers(2)
        self.assertEqual([(L.ERROR, 5), (L.ERROR, 6)], [answer[:2] for answer in answers])
        self.assertIn("protocol violation: LOAD of input #5 names cell 2 for key 'a', but the session's steps "
                      "declare 2 cell(s)", answers[0][2].decode())
        self.assertIn("session already failed", answers[1][2].decode())

    def test_loads_followed_by_another_input_than_their_record_are_a_protocol_violation(self):
        served = self.serve()
        served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        served.bridge.send(L.WATERMARK, 1, struct.pack("<q", 5))
        answers = served.await_answers(1)
        self.assertEqual((L.ERROR, 1), answers[0][:2])
        self.assertIn("LOAD frames of record input #0 came, then input #1 instead of that record",
                      answers[0][2].decode())

    def test_a_cell_read_on_a_watermark_fails_naming_the_step_and_the_cell(self):
        served = self.serve([("reads", "tests.segments.ReadsACellOnWatermarks", "{}")])
        served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        served.bridge.send(L.WATERMARK, 1, struct.pack("<q", 5))
        answers = served.await_answers(2)
        self.assertEqual([(L.END_OF_OUTPUTS, 0), (L.ERROR, 1)], [answer[:2] for answer in answers])
        self.assertIn("step 'reads': cell 'last' is used outside a record", answers[1][2].decode())

    def test_a_ttl_cell_stores_the_bridges_clock_before_each_value(self):
        # The session runs in this process: its CLOCK stamps this process's clock.
        self.addCleanup(sdk.stamp_clock, sdk._stamped_millis)
        served = self.serve([("counts", "tests.segments.CountsPerKey", '{"ttl_ms": 100}')], fails=False)
        bridge = served.bridge
        bridge.send(L.CLOCK, 0, struct.pack("<q", 1000))
        bridge.send(L.LOAD, 1, key_cells(b"a", c1={b"stale": struct.pack("<q", 900) + b"0",
                                                    b"fresh": struct.pack("<q", 901) + b"0"}).SerializeToString())
        bridge.send(L.RECORD, 1, keyed_record(b"a", b"x"))
        bridge.send(L.BARRIER, 2, struct.pack("<q", 1))
        answers = served.await_answers(5)
        self.assertEqual((L.CELL_WRITES, 2, (b"a", [(0, SET, b"1", b""), (1, PUT, struct.pack("<q", 1000) + b"1",
                                                                           b"x")])), self.outputs(answers)[3])
        # The count "1" (no TTL); the entries stale, fresh and x, each value behind its 8-byte write time (stale is
        # expired but still held: nothing read it).
        self.assertEqual((b"a", 1 + (5 + 9) + (5 + 9) + (1 + 9)), resident(answers[3][2]))

    def test_what_a_record_sent_to_the_dead_letters_changed_in_its_cells_stays(self):
        # As for whole-instance state: the step counted the refused record before it failed.
        served = self.serve(dead_letter=[0])
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        bridge.send(L.RECORD, 1, keyed_record(b"a", b"refuse"))
        bridge.send(L.RECORD, 2, keyed_record(b"a", b"y"))
        bridge.send(L.BARRIER, 3, struct.pack("<q", 1))
        answers = self.outputs(served.await_answers(7))
        self.assertEqual([L.OUTPUT, L.END_OF_OUTPUTS, L.INPUT_FAILED, L.OUTPUT, L.END_OF_OUTPUTS, L.CELL_WRITES,
                          L.END_OF_OUTPUTS], [answer[0] for answer in answers])
        self.assertEqual(b"a=3", answers[3][2])
        self.assertEqual((b"a", [(0, SET, b"3", b""), (1, PUT, b"1", b"x"), (1, PUT, b"2", b"refuse"),
                                 (1, PUT, b"3", b"y")]), answers[5][2])

    def test_every_kind_of_change_a_refused_record_made_stays_and_is_written_back_at_the_next_barrier(self):
        served = self.serve([("changes", "tests.segments.ChangesThenRefuses", "{}")], dead_letter=[0])
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0=b"loaded", c1={b"x": b"1", b"y": b"2"}).SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"keep"))
        bridge.send(L.BARRIER, 1, barrier(1))
        bridge.send(L.RECORD, 2, keyed_record(b"a", b"refuse"))
        bridge.send(L.RECORD, 3, keyed_record(b"a", b"show"))
        bridge.send(L.BARRIER, 4, barrier(2))
        bridge.send(L.RECORD, 5, keyed_record(b"a", b"refuse-clear"))
        bridge.send(L.BARRIER, 6, barrier(3))
        bridge.send(L.RECORD, 7, keyed_record(b"a", b"show"))
        answers = served.await_answers(14)
        self.assertEqual([(L.OUTPUT, 0, b"kept x=kept,y=2"), (L.END_OF_OUTPUTS, 0, b""),
                          (L.CELL_WRITES, 1, (b"a", [(0, SET, b"kept", b""), (1, PUT, b"kept", b"x")])),
                          (L.END_OF_OUTPUTS, 1, b""),
                          (L.INPUT_FAILED, 2),
                          (L.OUTPUT, 3, b"changed x=changed,z=3"), (L.END_OF_OUTPUTS, 3, b""),
                          (L.CELL_WRITES, 4, (b"a", [(0, SET, b"changed", b""), (1, PUT, b"changed", b"x"),
                                                     (1, REMOVE, b"", b"y"), (1, PUT, b"3", b"z")])),
                          (L.END_OF_OUTPUTS, 4, b""),
                          (L.INPUT_FAILED, 5),
                          (L.CELL_WRITES, 6, (b"a", [(0, CLEAR, b"", b""), (1, CLEAR, b"", b""),
                                                     (1, PUT, b"4", b"w")])),
                          (L.END_OF_OUTPUTS, 6, b""),
                          (L.OUTPUT, 7, b"- w=4"), (L.END_OF_OUTPUTS, 7, b"")],
                         [answer[:2] if answer[0] == L.INPUT_FAILED else answer for answer in self.outputs(answers)])
        self.assertEqual([(b"a", 4 + (1 + 4) + (1 + 1)), (b"a", 7 + (1 + 7) + (1 + 1)), (b"a", 1 + 1)],
                         [resident(body) for frame_type, _, body in answers if frame_type == L.CELL_WRITES])

    def test_a_barrier_evicts_the_keys_it_names_once_answered_and_a_record_of_one_then_needs_a_load(self):
        served = self.serve()
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0=b"5").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        bridge.send(L.LOAD, 1, key_cells(b"b").SerializeToString())
        bridge.send(L.RECORD, 1, keyed_record(b"b", b"x"))
        # a was changed since the last barrier: its writes still answer this barrier, before it is dropped.
        bridge.send(L.BARRIER, 2, barrier(1, b"a", b"never loaded"))
        bridge.send(L.RECORD, 3, keyed_record(b"b", b"y"))
        bridge.send(L.RECORD, 4, keyed_record(b"a", b"y"))
        answers = served.await_answers(10)
        self.assertEqual([(L.OUTPUT, 0, b"a=6"), (L.END_OF_OUTPUTS, 0, b""),
                          (L.OUTPUT, 1, b"b=1"), (L.END_OF_OUTPUTS, 1, b""),
                          (L.CELL_WRITES, 2, (b"a", [(0, SET, b"6", b""), (1, PUT, b"6", b"x")])),
                          (L.CELL_WRITES, 2, (b"b", [(0, SET, b"1", b""), (1, PUT, b"1", b"x")])),
                          (L.END_OF_OUTPUTS, 2, b""),
                          (L.OUTPUT, 3, b"b=2"), (L.END_OF_OUTPUTS, 3, b"")], self.outputs(answers[:9]))
        self.assertEqual((L.ERROR, 4), answers[9][:2])
        self.assertIn("protocol violation: the key 'a' of record input #4 is not resident: no LOAD for it came in "
                      "this session", answers[9][2].decode())

    def test_an_evicted_key_loaded_again_is_served_from_what_the_load_carries(self):
        served = self.serve(fails=False)
        bridge = served.bridge
        bridge.send(L.LOAD, 0, key_cells(b"a", c0=b"5").SerializeToString())
        bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
        bridge.send(L.LOAD, 1, key_cells(b"").SerializeToString())
        bridge.send(L.RECORD, 1, keyed_record(b"", b"x"))
        bridge.send(L.BARRIER, 2, barrier(1))
        # Clean now; the empty key (a record without one) is a key like any other.
        bridge.send(L.BARRIER, 3, barrier(2, b"", b"a"))
        bridge.send(L.LOAD, 4, key_cells(b"a", c0=b"40", c1={b"old": b"1"}).SerializeToString())
        bridge.send(L.RECORD, 4, keyed_record(b"a", b"y"))
        bridge.send(L.LOAD, 5, key_cells(b"").SerializeToString())
        bridge.send(L.RECORD, 5, keyed_record(b"", b"y"))
        bridge.send(L.BARRIER, 6, barrier(3))
        answers = served.await_answers(14)
        self.assertEqual([(L.END_OF_OUTPUTS, 3, b""),
                          (L.OUTPUT, 4, b"a=41"), (L.END_OF_OUTPUTS, 4, b""),
                          (L.OUTPUT, 5, b"=1"), (L.END_OF_OUTPUTS, 5, b""),
                          (L.CELL_WRITES, 6, (b"a", [(0, SET, b"41", b""), (1, PUT, b"41", b"y")])),
                          (L.CELL_WRITES, 6, (b"", [(0, SET, b"1", b""), (1, PUT, b"1", b"y")])),
                          (L.END_OF_OUTPUTS, 6, b"")], self.outputs(answers[7:]))
        self.assertEqual([(b"a", 2 + (3 + 1) + (1 + 2)), (b"", 1 + (1 + 1))],
                         [resident(body) for _, _, body in answers[12:14]])

    def test_a_barrier_whose_evicted_key_runs_past_its_body_is_a_corrupt_frame_ending_the_session(self):
        for name, body, logged in (
                ("a length past the body", barrier(1, b"a", b"bc", lengths=[1, 3]),
                 "corrupt BARRIER frame \\(input #1\\): an evicted key of 3 bytes runs past the body \\(2 byte"),
                ("a negative length", barrier(1, b"abc", lengths=[-1]),
                 "an evicted key of -1 bytes runs past the body"),
                ("too few bytes for a length", barrier(1, b"a") + b"\x01\x00",
                 "corrupt BARRIER frame \\(input #1\\): 2 byte\\(s\\) after its last evicted key"),
                ("no checkpoint id", b"\x01\x00\x00\x00", "a BARRIER frame of 4 body bytes \\(input #1\\)")):
            with self.subTest(name), self.assertLogs("flink_bridge.shm", "ERROR") as logs:
                served = self.serve(fails=False)
                served.bridge.send(L.LOAD, 0, key_cells(b"a").SerializeToString())
                served.bridge.send(L.RECORD, 0, keyed_record(b"a", b"x"))
                self.assertEqual([(L.OUTPUT, 0), (L.END_OF_OUTPUTS, 0)],
                                 [answer[:2] for answer in served.await_answers(2)])
                served.bridge.send(L.BARRIER, 1, body)
                served.thread.join(5)
                self.assertFalse(served.thread.is_alive())
                self.assertEqual(1, struct.unpack_from("<I", served.mapped, L.CLOSED_OFFSET)[0])
                # The barrier is not answered: the session ends at the corrupt frame.
                self.assertEqual([], served.bridge.answers())
            self.assertRegex("\n".join(logs.output), logged)

    def test_a_keys_writes_are_split_over_frames_that_fit_the_ring(self):
        # Frames of at most 2,048 bytes: 10 entries of 500 bytes take at least 3.
        served = self.serve([("big", "tests.segments.BigEntries", '{"count": 10, "size": 500}')], fails=False)
        served.bridge.send(L.LOAD, 0, key_cells(b"k").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"k", b"x"))
        served.bridge.send(L.BARRIER, 1, struct.pack("<q", 1))
        answers = served.await_answers(2)
        while answers[-1][0] != L.END_OF_OUTPUTS or answers[-1][1] != 1:
            answers += served.await_answers(1)
        frames = [body for frame_type, _, body in answers if frame_type == L.CELL_WRITES]
        self.assertGreaterEqual(len(frames), 3)
        self.assertTrue(all(L.FRAME_HEADER + len(body) <= served.loop.answers.max_frame for body in frames))
        written = [write for body in frames for write in writes(body)[1]]
        self.assertEqual({writes(body)[0] for body in frames}, {b"k"})
        self.assertEqual([(0, PUT, bytes([i]) * 500, b"%d" % i) for i in range(10)], written)
        # Every piece of the key's writes says what all of them make the key take.
        self.assertEqual({(b"k", 10 * (1 + 500))}, {resident(body) for body in frames})

    def test_a_write_too_large_for_a_frame_fails_the_step(self):
        served = self.serve([("big", "tests.segments.BigEntries", '{"count": 1, "size": 3000}')])
        served.bridge.send(L.LOAD, 0, key_cells(b"k").SerializeToString())
        served.bridge.send(L.RECORD, 0, keyed_record(b"k", b"x"))
        answers = served.await_answers(1)
        self.assertEqual((L.ERROR, 0), answers[0][:2])
        self.assertIn("step 'big' (tests.segments.BigEntries) failed: ValueError: cell 'entries' of step 'big': a "
                      "value of 3000 bytes", answers[0][2].decode())


class SessionDeclarationsTest(unittest.TestCase):

    def test_a_session_that_is_not_keyed_whose_steps_declare_cells_is_refused_naming_the_step_and_cell(self):
        with self.assertRaisesRegex(CellsNotKeyed, "step 'counts' declares cell 'count', but the session is not "
                                                   "keyed: cells live under the record's key: key the segment with "
                                                   "bridge.key"):
            Session("s", COUNTS)

    def test_a_keyed_session_without_cells_needs_no_loads(self):
        session = Session("s", [("echo", "tests.segments.Echo", "{}")], keyed=True)
        self.assertEqual([], session.declared_cells)

        class Answers:
            outputs = []
            output = outputs.append

            def end_of_outputs(self, sequence):
                self.outputs.append(sequence)

        session.record(0, 3, Message(b"x"), Answers(), b"key")
        self.assertEqual([Message(b"x"), 0], Answers.outputs)


class CellsOverGrpcTest(WorkerTest):
    """OpenSession lists the declared cells, or refuses them; the stream carries keys, LOADs and CELL_WRITES."""

    def open(self, steps, keyed, version=control_pb2.PROTOCOL_VERSION_CURRENT):
        return self.worker.open_session(steps, keyed, version)

    def test_open_session_lists_the_cells_in_step_then_declaration_order(self):
        opened = self.open([("first", "tests.segments.CountsPerKey", '{"ttl_ms": 5000}'),
                            ("echo", "tests.segments.Echo", "{}"),
                            ("last", "tests.segments.ReadsACellOnWatermarks", "{}")], keyed=True)
        self.assertEqual(6, opened.protocol_version)
        self.assertEqual([("first", "count", control_pb2.CELL_KIND_VALUE, 0),
                          ("first", "payloads", control_pb2.CELL_KIND_MAP, 5000),
                          ("last", "last", control_pb2.CELL_KIND_VALUE, 0)],
                         [(cell.step, cell.name, cell.kind, cell.ttl_ms) for cell in opened.cells])

    def test_a_session_that_is_not_keyed_with_cells_is_refused_with_failed_precondition(self):
        with self.assertRaises(grpc.RpcError) as refused:
            self.open(COUNTS, keyed=False)
        self.assertEqual(grpc.StatusCode.FAILED_PRECONDITION, refused.exception.code())
        self.assertIn("step 'counts' declares cell 'count', but the session is not keyed: cells live under the "
                      "record's key: key the segment with bridge.key", refused.exception.details())

    def test_only_protocol_version_6_is_spoken(self):
        with self.assertRaises(grpc.RpcError) as refused:
            self.open(COUNTS, keyed=True, version=5)
        self.assertEqual(grpc.StatusCode.FAILED_PRECONDITION, refused.exception.code())
        self.assertIn("protocol version 5 is not supported; this worker speaks 6", refused.exception.details())

    def test_records_carry_their_key_and_a_barrier_answers_with_the_cell_writes(self):
        opened = self.open(COUNTS, keyed=True)
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.LOAD, sequence=0, cells=key_cells(b"a", c0=b"9"))
        batch.frames.add(type=data_pb2.RECORD, sequence=0, key=b"a", key_group=3).record.payload = b"x"
        batch.frames.add(type=data_pb2.BARRIER, sequence=1, checkpoint_id=1)
        batch.frames.add(type=data_pb2.RECORD, sequence=2, key=b"b", key_group=3).record.payload = b"x"
        frames = self.worker.exchange(opened.session_id, batch)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.CELL_WRITES, 1),
                          (data_pb2.END_OF_OUTPUTS, 1), (data_pb2.ERROR, 2)],
                         [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual(b"a=10", frames[0].record.payload)
        self.assertEqual((b"a", [(0, SET, b"10", b""), (1, PUT, b"10", b"x")]),
                         writes(frames[2].cells.SerializeToString()))
        self.assertIn("the key 'b' of record input #2 is not resident", frames[4].error)
        self.assertEqual(2 + (1 + 2), frames[2].cells.resident_bytes)

    def exchange(self, batch):
        """The answer frames to one input batch, on a new keyed session of CountsPerKey."""
        return self.worker.exchange(self.open(COUNTS, keyed=True).session_id, batch)

    def test_a_barrier_evicts_the_keys_of_its_evict_field_once_answered(self):
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.LOAD, sequence=0, cells=key_cells(b"a", c0=b"5"))
        batch.frames.add(type=data_pb2.RECORD, sequence=0, key=b"a", key_group=3).record.payload = b"x"
        batch.frames.add(type=data_pb2.LOAD, sequence=1, cells=key_cells(b"b"))
        batch.frames.add(type=data_pb2.RECORD, sequence=1, key=b"b", key_group=3).record.payload = b"x"
        batch.frames.add(type=data_pb2.BARRIER, sequence=2, checkpoint_id=1, evict=[b"a", b"never loaded"])
        batch.frames.add(type=data_pb2.RECORD, sequence=3, key=b"b", key_group=3).record.payload = b"y"
        batch.frames.add(type=data_pb2.RECORD, sequence=4, key=b"a", key_group=3).record.payload = b"y"
        frames = self.exchange(batch)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.OUTPUT, 1),
                          (data_pb2.END_OF_OUTPUTS, 1), (data_pb2.CELL_WRITES, 2), (data_pb2.CELL_WRITES, 2),
                          (data_pb2.END_OF_OUTPUTS, 2), (data_pb2.OUTPUT, 3), (data_pb2.END_OF_OUTPUTS, 3),
                          (data_pb2.ERROR, 4)], [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual([(b"a", 1 + (1 + 1)), (b"b", 1 + (1 + 1))],
                         [(frame.cells.key, frame.cells.resident_bytes) for frame in frames[4:6]])
        self.assertEqual(b"b=2", frames[7].record.payload)
        self.assertIn("the key 'a' of record input #4 is not resident", frames[9].error)

    def test_an_evicted_key_loaded_again_is_served_from_what_the_load_carries(self):
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.LOAD, sequence=0, cells=key_cells(b"a", c0=b"5"))
        batch.frames.add(type=data_pb2.RECORD, sequence=0, key=b"a", key_group=3).record.payload = b"x"
        batch.frames.add(type=data_pb2.BARRIER, sequence=1, checkpoint_id=1)
        batch.frames.add(type=data_pb2.BARRIER, sequence=2, checkpoint_id=2, evict=[b"a"])
        batch.frames.add(type=data_pb2.LOAD, sequence=3, cells=key_cells(b"a", c0=b"40", c1={b"old": b"1"}))
        batch.frames.add(type=data_pb2.RECORD, sequence=3, key=b"a", key_group=3).record.payload = b"y"
        batch.frames.add(type=data_pb2.BARRIER, sequence=4, checkpoint_id=3)
        frames = self.exchange(batch)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.CELL_WRITES, 1),
                          (data_pb2.END_OF_OUTPUTS, 1), (data_pb2.END_OF_OUTPUTS, 2), (data_pb2.OUTPUT, 3),
                          (data_pb2.END_OF_OUTPUTS, 3), (data_pb2.CELL_WRITES, 4), (data_pb2.END_OF_OUTPUTS, 4)],
                         [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual(b"a=41", frames[5].record.payload)
        self.assertEqual((b"a", [(0, SET, b"41", b""), (1, PUT, b"41", b"y")]),
                         writes(frames[7].cells.SerializeToString()))
        self.assertEqual(2 + (3 + 1) + (1 + 2), frames[7].cells.resident_bytes)


if __name__ == "__main__":
    unittest.main()
