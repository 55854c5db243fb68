import unittest

from flink_bridge import state_pieces
from flink_bridge._proto import control as control_pb2
from flink_bridge.segments import UNKEYED


class StatePiecesTest(unittest.TestCase):

    def test_states_larger_than_a_message_travel_in_pieces_and_join_back(self):
        large = bytes(range(256)) * (40 * 1024 + 1)  # just over 10 MiB
        states = {3: b"three", 7: large, UNKEYED: b"unkeyed"}
        messages = list(state_pieces.messages(states))

        for message in messages:
            self.assertLessEqual(sum(len(piece.state) for piece in message), state_pieces.MESSAGE_BYTES)
        self.assertEqual(3, len(messages))
        assembler = state_pieces.Assembler()
        for message in messages:
            for piece in message:
                assembler.add(piece)
        self.assertEqual(states, assembler.finish())
        unkeyed = [piece for message in messages for piece in message if not piece.HasField("key_group")]
        self.assertEqual(1, len(unkeyed))

    def test_pieces_that_make_no_whole_state_are_refused(self):
        twice = state_pieces.Assembler()
        twice.add(control_pb2.KeyGroupState(key_group=5, state=b"a"))
        with self.assertRaisesRegex(ValueError, "key group 5 given twice"):
            twice.add(control_pb2.KeyGroupState(key_group=5, state=b"b"))

        cut_off = state_pieces.Assembler()
        cut_off.add(control_pb2.KeyGroupState(key_group=5, state=b"a", continued=True))
        with self.assertRaisesRegex(ValueError, "key group 5 ends without its last piece"):
            cut_off.finish()
        with self.assertRaisesRegex(ValueError, "key group 5 ends without its last piece"):
            cut_off.add(control_pb2.KeyGroupState(key_group=6, state=b"b"))


if __name__ == "__main__":
    unittest.main()
