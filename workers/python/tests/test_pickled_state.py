"""Restoring a pickled instance runs code chosen by whoever can write the checkpoint storage: a segment with its
own snapshot()/restore(bytes) is never unpickled (window segments included), and a worker told to refuse pickled
state (--refuse-pickled-state) refuses segments without them and checkpoints holding pickled state."""
import os
import pickle
import unittest
from unittest import mock

from flink_bridge.segments import PICKLED_STATE_ENV, build_step
from tests import segments

WINDOW = '{"window": {"size_ms": 1000}}'


def crafted_state():
    return pickle.dumps(segments.Unpickled())


class PickledStateTest(unittest.TestCase):

    def setUp(self):
        segments.UNPICKLED.clear()

    def test_a_segment_with_its_own_state_gets_the_bytes_never_unpickled(self):
        step = build_step("own", "tests.segments.OwnState", "{}")
        step.restore_state(crafted_state())
        self.assertEqual(crafted_state(), step.instance.restored)
        self.assertEqual([], segments.UNPICKLED)

    def test_a_window_segment_with_its_own_state_writes_no_pickle_and_restores_it(self):
        step = build_step("windows", "tests.segments.OwnStateWindows", WINDOW)
        step.open.add((1000, "key"))
        state = step.snapshot_state()
        self.assertNotIn(b"\x80", state[:2], "a pickle's first bytes")
        restored = build_step("windows", "tests.segments.OwnStateWindows", WINDOW)
        restored.restore_state(state)
        self.assertEqual({(1000, "key")}, restored.open)
        self.assertEqual(b"own state", restored.instance.restored)

    def test_a_worker_refusing_pickled_state_refuses_a_segment_without_its_own(self):
        with mock.patch.dict(os.environ, {PICKLED_STATE_ENV: "refuse"}):
            with self.assertRaises(ValueError) as refused:
                build_step("count", "tests.segments.Counter", "{}")
        self.assertIn("segment 'count' (tests.segments.Counter) keeps its state as its pickled instance",
                      str(refused.exception))
        self.assertIn("--refuse-pickled-state", str(refused.exception))

    def test_a_worker_refusing_pickled_state_refuses_pickled_windows_without_unpickling(self):
        old_format = pickle.dumps((b"own state", [segments.Unpickled()]))
        with mock.patch.dict(os.environ, {PICKLED_STATE_ENV: "refuse"}):
            step = build_step("windows", "tests.segments.OwnStateWindows", WINDOW)
            with self.assertRaises(ValueError) as refused:
                step.restore_state(old_format)
        self.assertIn("its checkpointed windows is pickled", str(refused.exception))
        self.assertEqual([], segments.UNPICKLED)

    def test_pickled_state_still_restores_where_it_is_allowed(self):
        counter = build_step("count", "tests.segments.Counter", "{}")
        counter.instance.seen = 7
        restored = build_step("count", "tests.segments.Counter", "{}")
        restored.restore_state(counter.snapshot_state())
        self.assertEqual(7, restored.instance.seen)


if __name__ == "__main__":
    unittest.main()
