"""The README's test of a user step, as written there: a reminder per key on an event-time timer."""
import unittest

from flink_bridge.sdk import EVENT_TIME, Message, timers, value_cell
from flink_bridge.testing import StepHarness


class Reminder:
    """Re-emits a key's last record ``after_ms`` of event time after it (docs/python-worker.md, "Timers")."""

    def __init__(self, after_ms=60_000):
        self.after_ms = after_ms
        self.timers = timers()
        self.last = value_cell("last")

    def process(self, message):
        self.last.set(message.payload)
        self.timers.set_event_time(message.timestamp + self.after_ms)
        return []

    def on_timer(self, timestamp, domain):
        return [Message(self.last.get(b""), {}, timestamp)]


class ReadmeExampleTest(unittest.TestCase):
    def test_a_quiet_key_is_reminded(self):
        with StepHarness(Reminder, {"after_ms": 1000}) as harness:
            harness.process(Message(b"x", {}, 5000), key="a")
            self.assertEqual([(EVENT_TIME, 6000)], harness.timers("a"))
            self.assertEqual([b"x"], [m.payload for m in harness.watermark(6000)])  # the timer fires first


if __name__ == "__main__":
    unittest.main()
