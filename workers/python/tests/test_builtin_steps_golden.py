"""The Python worker's built-in steps give what the golden vectors say (proto/conventions,
builtin-steps.golden.json; the format is in docs/steps.md, "Golden vectors"), each step made and fed as a session
does (by flink_bridge.testing.StepHarness): one instance per key group, on the clock the bridge stamps."""
import base64
import json
import pathlib
import struct
import unittest

from flink_bridge import steps
from flink_bridge.sdk import Message
from flink_bridge.segments import UNKEYED
from flink_bridge.testing import StepHarness

WORKER = "python"
VECTORS_PATH = (pathlib.Path(__file__).resolve().parents[3] / "proto" / "conventions" / "src" / "main" / "resources"
                / "org" / "flinkbridge" / "protocol" / "builtin-steps.golden.json")


def load_vectors():
    with open(VECTORS_PATH, encoding="utf-8") as file:
        return json.load(file)["vectors"]


def payload(record):
    return record["text"].encode("utf-8") if "text" in record else base64.b64decode(record["base64"])


def message(record):
    return Message(payload(record), dict(record.get("headers", {})), record.get("timestamp", 0))


def states(entries):
    """Step states by key group (UNKEYED for a stream that is not keyed)."""
    return {entry.get("key_group", UNKEYED): bytes.fromhex(entry["state_hex"]) for entry in entries}


def hex_states(states_by_group):
    return {group: state.hex() for group, state in states_by_group.items()}


def error_mismatch(what, expected, actual):
    """None when an error (or none) came as expected: ``actual`` contains ``expected``, or both are None."""
    if expected is None:
        return None if actual is None else f"{what} failed: {actual}"
    if actual is not None and expected in actual:
        return None
    outcome = "succeeded" if actual is None else f"failed with {actual!r}"
    return f"{what} {outcome}, expected an error containing {expected!r}"


def outputs_mismatch(event, call):
    """Runs ``call()``, an input to the harness; None when it gives the event's outputs (or its error), else what
    differs."""
    try:
        outputs = call()
        error = None
    except Exception as e:
        error = str(e)
    if "error" in event:
        return error_mismatch("the input", event["error"], error)
    if error is not None:
        return f"failed with {error!r}"
    expected = [Message(payload(output), output["headers"], output["timestamp"]) for output in event["outputs"]]
    return None if outputs == expected else f"gave {outputs}, expected {expected}"


def segment_state(step_state):
    """A one-step segment's state as a worker gives it: the step count (1), the state's length, the state."""
    return step_state and struct.pack(">ii", 1, len(step_state)) + step_state


class Session:
    """A session of the vector's step, in the harness that runs steps as the worker does; its states are the
    segment's encoding of the step's. The vectors are played in sessions that are not keyed (running_count keeps
    its counts in cells in a keyed one)."""

    def __init__(self, step):
        self.harness = StepHarness(step["type"], step["config"], step["name"], keyed=False)

    def apply(self, event):
        if "clock" in event:
            self.harness.set_processing_time(event["clock"])
            return None
        if "record" in event:
            record = event["record"]
            return outputs_mismatch(event, lambda: self.harness.process(message(record),
                                                                        record.get("key_group", UNKEYED)))
        if "watermark" in event:
            return outputs_mismatch(event, lambda: self.harness.watermark(event["watermark"]))
        if "checkpoint" in event:
            actual = self.harness.checkpoint()
            expected = {group: segment_state(state) for group, state in states(event["checkpoint"]).items()}
            if actual == expected:
                return None
            return f"the checkpoint holds {hex_states(actual)}, expected {hex_states(expected)}"
        raise ValueError(f"an event that is none of clock, record, watermark, checkpoint, restore: {event}")

    def close(self):
        self.harness.close()

    def restore(self, event):
        try:
            self.harness.restore({group: segment_state(state) for group, state in states(event["restore"]).items()})
            error = None
        except Exception as e:
            error = str(e)
        return error_mismatch("the restore", event.get("error"), error)


def mismatch(vector):
    """None when this worker gives what the vector says, else the first difference."""
    step = vector["step"]
    if "open_error" in vector:
        try:
            StepHarness(step["type"], step["config"], step["name"], keyed=False).close()
            error = None
        except Exception as e:
            error = str(e)
        return error_mismatch("opening the step", vector["open_error"], error)
    session = Session(step)
    try:
        for index, event in enumerate(vector["events"]):
            if "restore" in event:
                session.close()
                session = Session(step)
                found = session.restore(event)
            else:
                found = session.apply(event)
            if found is not None:
                return f"event {index} ({next(iter(event))}): {found}"
        return None
    finally:
        session.close()


class BuiltInStepsGoldenTest(unittest.TestCase):

    def test_every_vector(self):
        for vector in load_vectors():
            with self.subTest(vector["name"]):
                found = mismatch(vector)
                if WORKER in vector.get("known_drift", {}):
                    self.assertIsNotNone(found, f"the known drift is gone: remove the vector's known_drift.{WORKER}")
                else:
                    self.assertIsNone(found)

    def test_every_built_in_step_has_vectors(self):
        self.assertEqual(set(steps.BUILT_IN), {vector["step"]["type"] for vector in load_vectors()})


if __name__ == "__main__":
    unittest.main()
