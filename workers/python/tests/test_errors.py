import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest

import grpc

from flink_bridge import errors
from flink_bridge._proto import control as control_pb2
from flink_bridge._proto import data as data_pb2
from tests.long_errors import LONG

CUT = re.compile(r"(?s)(.*) \.\.\. \[(\d+) bytes cut; the whole text is in the worker's log\] \.\.\. (.*)")


class CutTest(unittest.TestCase):

    def test_a_text_that_fits_is_kept_as_it_is(self):
        text = "x" * (errors.MAX_BYTES - 3) + "ü"
        self.assertEqual(errors.MAX_BYTES + 3, errors.encoded_length(text))
        self.assertIs(text, errors.cut(text, errors.MAX_BYTES + 3))

    def test_percent_and_tilde_and_every_non_ascii_byte_count_three(self):
        self.assertEqual(1 + 3 + 3 + 3 + 3 * 2 + 3 * 4, errors.encoded_length("a%~\nü😀"))

    def test_a_long_text_keeps_its_start_and_end_and_says_how_much_is_cut(self):
        text = "ValueError: start " + "ü€😀 x" * 20_000 + " the end"
        cut = errors.cut(text)
        self.assertLessEqual(errors.encoded_length(cut), errors.MAX_BYTES)
        self.assertGreater(errors.encoded_length(cut), errors.MAX_BYTES - 12, cut)
        start, bytes_cut, end = CUT.fullmatch(cut).groups()
        self.assertTrue(text.startswith(start) and start.startswith("ValueError: "), start)
        self.assertTrue(text.endswith(end) and end.endswith(" the end"), end)
        self.assertEqual(len(text.encode()), len(start.encode()) + int(bytes_cut) + len(end.encode()))

    def test_a_cut_falls_on_character_boundaries_whatever_the_limit(self):
        text = "😀" * 3_000
        for limit in range(200, 260):
            cut = errors.cut(text, limit)
            start, _, end = CUT.fullmatch(cut).groups()
            self.assertLessEqual(errors.encoded_length(cut), limit)
            self.assertEqual({"😀"}, set(start) | set(end))


# A segment that fails with the long message on import (tests.long_errors fails with it on a record, on restore).
SEGMENTS = {
    "unimportable.py": '''
from tests.long_errors import LONG

raise RuntimeError(LONG)
''',
}
SECRET = "error-texts-test-secret-0123456789"
# What grpc-java's client, the bridge's, takes in headers by default (and grpc's C core too).
CLIENTS_METADATA_LIMIT = 8192


class LongErrorsOverTheWireTest(unittest.TestCase):
    """A real worker, called as the bridge calls it over gRPC by a client that takes 8 KiB of headers: a failure
    whose text passes 100 KiB reaches it as the worker's own text, cut (docs/protocol.md, "Error texts")."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp()
        for name, source in SEGMENTS.items():
            with open(os.path.join(cls.dir, name), "w") as module:
                module.write(source)
        socket_path = os.path.join(cls.dir, "worker.sock")
        cls.log = os.path.join(cls.dir, "worker.log")
        runtime = os.path.dirname(os.path.dirname(os.path.abspath(errors.__file__)))
        with open(cls.log, "w") as log:
            cls.worker = subprocess.Popen(
                [sys.executable, "-B", runtime, "--unix-socket-path", socket_path, "--ring-dir", cls.dir,
                 "--path", cls.dir], stdout=subprocess.PIPE, stderr=log, text=True,
                env=dict(os.environ, FLINK_BRIDGE_SECRET=SECRET))
        listening = cls.worker.stdout.readline()
        if not listening.startswith("flink-bridge worker listening on "):
            raise AssertionError(f"the worker did not start: {listening!r}")
        cls.channel = grpc.insecure_channel(f"unix:{socket_path}",
                                            options=[("grpc.max_metadata_size", CLIENTS_METADATA_LIMIT)])

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        cls.worker.terminate()
        cls.worker.wait(10)
        shutil.rmtree(cls.dir)

    def setUp(self):
        self.log_start = os.path.getsize(self.log)

    def call(self, method, kind, request, response_type, metadata=()):
        serializer = getattr(self.channel, kind)(
            method, request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_type.FromString)
        return serializer(request, metadata=(("flink-bridge-secret", SECRET),) + metadata, timeout=30)

    def open(self, step_type):
        request = control_pb2.OpenSessionRequest(
            protocol_version=control_pb2.PROTOCOL_VERSION_CURRENT, transport=control_pb2.TRANSPORT_KIND_GRPC,
            token="t", identity=control_pb2.SessionIdentity(job_name="test", operator_name="op"),
            steps=[control_pb2.StepSpec(name="failing", type=step_type, config_json="{}")])
        return self.call("/flinkbridge.v1.BridgeControl/OpenSession", "unary_unary", request,
                         control_pb2.OpenSessionResponse).session_id

    def close(self, session_id):
        self.call("/flinkbridge.v1.BridgeControl/CloseSession", "unary_unary",
                  control_pb2.SessionRef(session_id=session_id), control_pb2.Ack)

    def assert_cut(self, text, *kept):
        """``text`` is the worker's own, cut: it holds ``kept`` and the marker, and fits what the bridge takes; and
        the worker logged the whole message, naming the session, since the test began."""
        for part in kept:
            self.assertIn(part, text)
        self.assertRegex(text, CUT)
        self.assertLessEqual(errors.encoded_length(text), errors.MAX_BYTES)
        session = text.split(" ", 2)[1]
        with open(self.log, encoding="utf-8") as log:
            log.seek(self.log_start)
            logged = log.read()
        self.assertIn(LONG, logged)
        self.assertIn(f"session {session} ", logged)

    def test_a_segment_that_fails_to_import_refuses_the_session_with_its_text_cut(self):
        with self.assertRaises(grpc.RpcError) as refused:
            self.open("unimportable.Segment")
        self.assertEqual(grpc.StatusCode.INVALID_ARGUMENT, refused.exception.code(), refused.exception)
        text = refused.exception.details()
        self.assertTrue(text.startswith("session "), text)
        self.assert_cut(text, "step 'failing': cannot import module unimportable",
                        "RuntimeError: told to fail with a long message:")

    def test_a_segment_failing_a_record_answers_an_error_with_its_text_cut(self):
        session_id = self.open("tests.long_errors.FailsOnRecord")
        record = data_pb2.Frame(type=data_pb2.RECORD, sequence=0)
        record.record.payload = b"{}"
        answers = self.call("/flinkbridge.v1.BridgeData/Exchange", "stream_stream",
                            iter([data_pb2.FrameBatch(frames=[record])]), data_pb2.FrameBatch,
                            (("flink-bridge-session", session_id), ("flink-bridge-token", "t")))
        (error,) = next(answers).frames
        answers.cancel()
        self.assertEqual((data_pb2.ERROR, 0), (error.type, error.sequence))
        self.assertTrue(error.error.startswith(f"session {session_id} "), error.error)
        self.assert_cut(error.error,
                        "step 'failing' (tests.long_errors.FailsOnRecord) failed: RuntimeError: told to fail")

    def test_a_state_that_fails_to_restore_is_refused_with_its_text_cut(self):
        session_id = self.open("tests.long_errors.FailsOnRestore")
        # The segment's encoding of one step's state (SegmentChain): the step count, then each state's length and bytes.
        one_steps_state = struct.pack(">ii", 1, 1) + b"x"
        with self.assertRaises(grpc.RpcError) as refused:
            self.call("/flinkbridge.v1.BridgeControl/RestoreState", "stream_unary",
                      iter([control_pb2.RestoreStateRequest(session_id=session_id, states=[
                          control_pb2.KeyGroupState(key_group=3, state=one_steps_state)])]), control_pb2.Ack)
        self.close(session_id)
        self.assertEqual(grpc.StatusCode.INTERNAL, refused.exception.code(), refused.exception)
        text = refused.exception.details()
        self.assertTrue(text.startswith(f"session {session_id} "), text)
        self.assert_cut(text, "RuntimeError: told to fail with a long message:")


if __name__ == "__main__":
    unittest.main()
