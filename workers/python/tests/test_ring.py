import os
import struct
import tempfile
import unittest

from flink_bridge import codec
from flink_bridge import layout as L
from flink_bridge.ring import RingError, RingFile, check_ring_path
from flink_bridge.sdk import Message
from flink_bridge.session import Session
from tests import rings


class RingPathTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.mkdtemp()

    def test_a_ring_in_the_directory_is_accepted(self):
        path, _ = rings.create(self.dir)
        self.assertEqual(path, check_ring_path(self.dir, path))

    def test_a_path_outside_the_directory_is_refused_without_echoing_the_file(self):
        with self.assertRaises(RingError) as refused:
            check_ring_path(self.dir, "/etc/shadow")
        self.assertIn("is not a .ring file in this worker's ring directory", str(refused.exception))
        self.assertNotIn("bytes", str(refused.exception))

    def test_a_symbolic_link_is_refused(self):
        target, _ = rings.create(self.dir, "target.ring")
        link = os.path.join(self.dir, "link.ring")
        os.symlink(target, link)
        with self.assertRaises(RingError) as refused:
            check_ring_path(self.dir, link)
        self.assertIn("is not a regular file", str(refused.exception))

    def test_a_file_others_may_read_is_refused(self):
        path, _ = rings.create(self.dir)
        os.chmod(path, 0o644)
        with self.assertRaises(RingError) as refused:
            check_ring_path(self.dir, path)
        self.assertIn("has mode rw-r--r--; a ring file is rw-------", str(refused.exception))

    def test_a_wrong_token_is_refused(self):
        path, _ = rings.create(self.dir)
        with self.assertRaises(RingError) as refused:
            RingFile(path, "other")
        self.assertIn("the session token does not match", str(refused.exception))


class EchoSteps:
    """A session whose one step passes records on unchanged."""
    STEPS = [("echo", "tests.segments.Echo", "{}")]


class ShmLoopTest(unittest.TestCase):

    def setUp(self):
        self.served = rings.ServedRing(tempfile.mkdtemp(), Session("session t", EchoSteps.STEPS))
        self.mapped, self.bridge, self.thread = self.served.mapped, self.served.bridge, self.served.thread
        self.await_answers = self.served.await_answers

    def tearDown(self):
        self.served.stop()

    def test_records_come_back_in_order_across_the_ring_end(self):
        # 300 records of ~60 bytes wrap the 4 KiB rings several times, through PADDING frames.
        answers = []
        for sequence in range(300):
            body = codec.encode(Message(b"payload-%d" % sequence, {"k": "v"}, sequence))
            while self.bridge.tail - self.bridge.inputs_taken.value > 2048:
                answers += self.bridge.answers()
            self.bridge.send(L.RECORD, sequence, body, flags=7)
        answers += self.await_answers(600 - len(answers))
        self.assertEqual(600, len(answers))
        for sequence in range(300):
            output, end = answers[2 * sequence], answers[2 * sequence + 1]
            self.assertEqual((L.OUTPUT, sequence), output[:2])
            self.assertEqual(Message(b"payload-%d" % sequence, {"k": "v"}, sequence),
                             codec.decode(output[2], 0, len(output[2])))
            self.assertEqual((L.END_OF_OUTPUTS, sequence, b""), end)

    def test_a_corrupt_frame_ends_the_session_and_closes_the_ring(self):
        struct.pack_into("<IHHq", self.mapped, L.HEADER_SIZE, 1 << 30, L.RECORD, 0, 0)
        self.bridge.inputs_published.value = 16
        self.thread.join(5)
        self.assertFalse(self.thread.is_alive())
        self.assertEqual(1, struct.unpack_from("<I", self.mapped, L.CLOSED_OFFSET)[0])

    def test_a_failing_step_answers_an_error_naming_the_step_and_the_exception(self):
        self.bridge.send(L.RECORD, 0, codec.encode(Message(b"boom", {}, 0)), flags=L.NO_KEY_GROUP)
        (error,) = self.await_answers(1)
        self.assertEqual((L.ERROR, 0), error[:2])
        text = error[2].decode()
        self.assertIn("session t: step 'echo' (tests.segments.Echo) failed: ValueError: told to fail", text)
        self.assertIn("segments.py", text)


if __name__ == "__main__":
    unittest.main()
