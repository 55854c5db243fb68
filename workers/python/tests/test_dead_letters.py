"""A record a step with on_error dead_letter fails on is answered with one INPUT_FAILED naming the step, the error's
class and its message, none of its outputs reaching the bridge, and the session goes on; a failure of any other step,
or on a watermark, is still an ERROR (docs/protocol.md, "Failed inputs"). Over a real ring, and over the gRPC stream
of a real worker."""
import struct
import tempfile
import unittest

from flink_bridge import codec, errors
from flink_bridge import layout as L
from flink_bridge._proto import control as control_pb2
from flink_bridge._proto import data as data_pb2
from flink_bridge.sdk import Message
from flink_bridge.session import Session
from tests import rings
from tests.test_control_plane import WorkerTest
from tests.test_errors import CUT

# A segment whose second step fails on a line that is not JSON: the second input's first line passed it already.
SPLIT_AND_MARK = [("split", "tests.segments.SplitsLines", "{}"), ("mark", "append_field", "{}")]
INPUTS = [b'{"n":1}', b'{"n":2}\nnot json', b'{"n":3}']
MARKED = [b'{"n":1,"processed":true}', None, b'{"n":3,"processed":true}']
NOT_JSON = "step 'mark' (append_field): the payload is not JSON: "


def failure_fields(body):
    """The step, error class and message of an INPUT_FAILED body."""
    fields, at = [], 0
    for _ in range(3):
        (length,) = struct.unpack_from("<i", body, at)
        fields.append(body[at + 4:at + 4 + length].decode())
        at += 4 + length
    assert at == len(body), (at, body)
    return tuple(fields)


class DeadLettersOverTheRingTest(unittest.TestCase):

    def serve(self, steps, dead_letter):
        # Every test here fails an input, which the session logs whole (at WARNING when the answer cuts it).
        self.logged = self.enterContext(self.assertLogs("flink_bridge.session", "DEBUG"))
        served = rings.ServedRing(tempfile.mkdtemp(), Session("session t", steps, dead_letter=dead_letter))
        self.addCleanup(served.stop)
        return served

    def send_records(self, served, payloads):
        for sequence, payload in enumerate(payloads):
            served.bridge.send(L.RECORD, sequence, codec.encode(Message(payload, {}, sequence)), L.NO_KEY_GROUP)

    def assert_outputs(self, answers, sequence, payloads):
        self.assertEqual([(L.OUTPUT, sequence)] * len(payloads) + [(L.END_OF_OUTPUTS, sequence)],
                         [answer[:2] for answer in answers])
        self.assertEqual(payloads, [codec.decode(body, 0, len(body)).payload for _, _, body in answers[:-1]])

    def test_a_record_a_dead_letter_step_fails_on_is_answered_input_failed_without_its_outputs(self):
        served = self.serve(SPLIT_AND_MARK, dead_letter=[1])
        self.send_records(served, INPUTS)
        answers = served.await_answers(5)
        self.assert_outputs(answers[:2], 0, [MARKED[0]])
        self.assertEqual((L.INPUT_FAILED, 1), answers[2][:2])
        step, error_class, message = failure_fields(answers[2][2])
        self.assertEqual(("mark", "ValueError"), (step, error_class))
        self.assertTrue(message.startswith(NOT_JSON), message)
        self.assert_outputs(answers[3:], 2, [MARKED[2]])

    def test_a_failing_step_that_is_not_dead_letter_answers_an_error_and_the_session_fails(self):
        # The first step is dead-letter, so outputs are held: the failed input's first output never goes out.
        served = self.serve(SPLIT_AND_MARK, dead_letter=[0])
        self.send_records(served, INPUTS)
        answers = served.await_answers(4)
        self.assert_outputs(answers[:2], 0, [MARKED[0]])
        self.assertEqual([(L.ERROR, 1), (L.ERROR, 2)], [answer[:2] for answer in answers[2:]])
        self.assertIn("step 'mark' (append_field) failed: ValueError: " + NOT_JSON, answers[2][2].decode())
        self.assertIn("session already failed", answers[3][2].decode())

    def test_an_error_class_is_named_with_its_module_and_a_long_message_is_cut_to_fit_a_frame(self):
        served = self.serve([("refuses", "tests.segments.Refuses", "{}")], dead_letter=[0])
        long = "refuse " + "ü" * 900 + " (its end)"
        self.send_records(served, [b"a", long.encode(), b"refuse"])
        answers = served.await_answers(4)
        self.assert_outputs(answers[:2], 0, [b"a"])
        self.assertEqual([(L.INPUT_FAILED, 1), (L.INPUT_FAILED, 2)], [answer[:2] for answer in answers[2:4]])
        step, error_class, message = failure_fields(answers[2][2])
        self.assertEqual(("refuses", "tests.segments.Refused"), (step, error_class))
        start, _, end = CUT.fullmatch(message).groups()
        self.assertTrue(start.startswith("refuse ü") and end.endswith("ü (its end)"), message)
        self.assertLessEqual(L.FRAME_HEADER + len(answers[2][2]), served.loop.answers.max_frame)
        self.assertEqual(("refuses", "tests.segments.Refused", "refuse"), failure_fields(answers[3][2]))
        self.assertTrue(any(long in line for line in self.logged.output), self.logged.output)

    def test_a_watermark_failing_in_a_dead_letter_step_answers_an_error(self):
        served = self.serve([("refuses", "tests.segments.Refuses", "{}")], dead_letter=[0])
        self.send_records(served, [b"a"])
        served.bridge.send(L.WATERMARK, 1, struct.pack("<q", 5))
        answers = served.await_answers(3)
        self.assert_outputs(answers[:2], 0, [b"a"])
        error = answers[2]
        self.assertEqual((L.ERROR, 1), error[:2])
        self.assertIn("step 'refuses' (tests.segments.Refuses) failed: Refused: no watermarks", error[2].decode())

    def test_an_output_that_cannot_be_encoded_fails_its_record_and_the_output_before_it_is_dropped(self):
        served = self.serve([("bad", "tests.segments.LoneSurrogateHeader", "{}")], dead_letter=[0])
        self.send_records(served, [b"bad", b"good"])
        answers = served.await_answers(3)
        self.assertEqual((L.INPUT_FAILED, 0), answers[0][:2])
        step, error_class, message = failure_fields(answers[0][2])
        self.assertEqual(("bad", "UnicodeEncodeError"), (step, error_class))
        self.assertIn("surrogates not allowed", message)
        self.assert_outputs(answers[1:], 1, [b"good"])


class DeadLettersOverGrpcTest(WorkerTest):
    """The worker reads each step's on_error from OpenSession."""

    def exchange(self, *on_error):
        """The answers to INPUTS through SPLIT_AND_MARK, its steps' on_error as given."""
        opened = self.worker.open_session(SPLIT_AND_MARK, keyed=False, on_error=on_error)
        batch = data_pb2.FrameBatch()
        for sequence, payload in enumerate(INPUTS):
            batch.frames.add(type=data_pb2.RECORD, sequence=sequence).record.payload = payload
        return self.worker.exchange(opened.session_id, batch)

    def test_a_record_a_dead_letter_step_fails_on_is_answered_input_failed_without_its_outputs(self):
        frames = self.exchange(control_pb2.ON_ERROR_FAIL, control_pb2.ON_ERROR_DEAD_LETTER)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.INPUT_FAILED, 1),
                          (data_pb2.OUTPUT, 2), (data_pb2.END_OF_OUTPUTS, 2)],
                         [(frame.type, frame.sequence) for frame in frames])
        self.assertEqual([MARKED[0], MARKED[2]], [frames[0].record.payload, frames[3].record.payload])
        failure = frames[2].failure
        self.assertEqual(("mark", "ValueError"), (failure.step, failure.error_class))
        self.assertTrue(failure.message.startswith(NOT_JSON), failure.message)
        self.assertLessEqual(errors.encoded_length(failure.message), errors.MAX_BYTES)

    def test_a_failing_step_with_on_error_fail_answers_an_error_beside_a_dead_letter_step(self):
        frames = self.exchange(control_pb2.ON_ERROR_DEAD_LETTER, control_pb2.ON_ERROR_FAIL)
        self.assertEqual([(data_pb2.OUTPUT, 0), (data_pb2.END_OF_OUTPUTS, 0), (data_pb2.ERROR, 1),
                          (data_pb2.ERROR, 2)], [(frame.type, frame.sequence) for frame in frames])
        self.assertIn("step 'mark' (append_field) failed: ValueError: " + NOT_JSON, frames[2].error)


if __name__ == "__main__":
    unittest.main()
