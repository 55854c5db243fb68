import unittest

from flink_bridge import session_process
from flink_bridge._proto import data as data_pb2


class AnswerBatchesTest(unittest.TestCase):

    def test_a_batch_within_the_limit_goes_whole(self):
        batch = data_pb2.FrameBatch()
        batch.frames.add(type=data_pb2.END_OF_OUTPUTS, sequence=3)
        self.assertEqual([batch.SerializeToString()], session_process.split_batch(batch))

    def test_large_answers_go_in_parts_in_order(self):
        batch = data_pb2.FrameBatch()
        for sequence in range(64):
            frame = batch.frames.add(type=data_pb2.OUTPUT, sequence=sequence)
            frame.record.payload = bytes(1 << 20)
            batch.frames.add(type=data_pb2.END_OF_OUTPUTS, sequence=sequence)

        parts = [data_pb2.FrameBatch.FromString(part) for part in session_process.split_batch(batch)]

        self.assertGreaterEqual(len(parts), 16)
        for part in parts:
            self.assertLessEqual(part.ByteSize(), session_process.MAX_BATCH_BYTES + (1 << 20) + 64)
        self.assertEqual(list(batch.frames), [frame for part in parts for frame in part.frames])


if __name__ == "__main__":
    unittest.main()
