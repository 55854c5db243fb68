import json
import time
import unittest

from flink_bridge import codec
from flink_bridge.codec import CorruptRecord
from flink_bridge import sdk
from flink_bridge.sdk import Message
from flink_bridge.segments import SegmentChain, StepFailed, WorkerSegments


def run(steps, messages, watermark=None):
    chain = SegmentChain([(f"s{i}", step_type, json.dumps(config)) for i, (step_type, config) in enumerate(steps)])
    out = []
    for message in messages:
        chain.process(message, out.append)
    if watermark is not None:
        chain.on_watermark(watermark, out.append)
    return chain, out


def event(key, value, timestamp=0):
    return Message(json.dumps({"key": key, "value": value}, separators=(",", ":")).encode(), {"h": "1"}, timestamp)


class BuiltInStepsTest(unittest.TestCase):
    """The built-in steps give what the Java worker gives for the same configuration (see worker/steps)."""

    def test_append_field_then_batch_writes_compact_json_like_the_java_worker(self):
        _, out = run([("append_field", {"field": "processed", "value": True}), ("batch", {"max_count": 2})],
                     [event("a", 1, 5), event("é", 2, 6)])
        self.assertEqual([Message('[{"key":"a","value":1,"processed":true},{"key":"é","value":2,"processed":true}]'
                                  .encode(), {"h": "1", "batch_size": "2"}, 6)], out)

    def test_a_batch_still_open_is_emitted_by_the_last_watermark(self):
        _, out = run([("batch", {"max_count": 10})], [Message(b"not json", {}, 1)], watermark=2 ** 63 - 1)
        self.assertEqual(b'["not json"]', out[0].payload)

    def test_a_batch_ages_by_the_clock_the_bridge_stamps_alone(self):
        sdk.stamp_clock(1000)
        try:
            chain, out = run([("batch", {"max_count": 100, "max_wait_ms": 10})], [Message(b"1")])
            time.sleep(0.02)
            chain.on_watermark(2, out.append)
            self.assertEqual([], out, "the bridge's clock has not moved, however long the worker waited")
            sdk.stamp_clock(1009)
            chain.process(Message(b"2"), out.append)
            self.assertEqual([], out)
            sdk.stamp_clock(1010)
            chain.on_watermark(4, out.append)
            self.assertEqual([b"[1,2]"], [m.payload for m in out])
        finally:
            sdk.stamp_clock(None)

    def test_filter_compares_a_field_as_written(self):
        _, out = run([("filter", {"json_field": "value", "equals": "1.50"})],
                     [Message(b'{"value":1.50}'), Message(b'{"value":1.5}'), Message(b'[1]')])
        self.assertEqual([b'{"value":1.50}'], [m.payload for m in out])

    def test_running_count_state_is_the_java_workers_encoding(self):
        chain, out = run([("running_count", {"key_json_field": "key"})], [event("a", 1), event("a", 2)])
        self.assertEqual([b'{"key":"a","count":1}', b'{"key":"a","count":2}'], [m.payload for m in out])
        # chain: 1 step, its state's length; running_count: version 2, 1 count, key "a", count 2 (big-endian)
        step_state = bytes([2]) + (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + b"a" + (2).to_bytes(8, "big")
        self.assertEqual((1).to_bytes(4, "big") + len(step_state).to_bytes(4, "big") + step_state,
                         chain.snapshot_state())
        restored, out = run([("running_count", {"key_json_field": "key"})], [])
        restored.restore_state(chain.snapshot_state())
        restored.process(event("a", 3), out.append)
        self.assertEqual(b'{"key":"a","count":3}', out[0].payload)

    def test_count_emits_windows_the_watermark_passed(self):
        chain, out = run([("count", {"window_ms": 10, "key_header": "h"})],
                         [event("a", 1, 3), event("a", 1, 12), event("a", 1, 13)], watermark=10)
        self.assertEqual([Message(b'{"key":"1","window_start":0,"window_end":10,"count":1}', {"key": "1"}, 9)], out)
        copy, _ = run([("count", {"window_ms": 10, "key_header": "h"})], [])
        copy.restore_state(chain.snapshot_state())
        copy.on_watermark(20, out.append)
        self.assertEqual(b'{"key":"1","window_start":10,"window_end":20,"count":2}', out[1].payload)

    def test_bad_configuration_names_the_step_and_the_key(self):
        with self.assertRaises(ValueError) as refused:
            run([("batch", {"max_count": "ten"})], [])
        self.assertEqual("step 's0': config max_count must be a whole number >= 1, not \"ten\"", str(refused.exception))

    def test_a_truncated_state_is_refused(self):
        chain, _ = run([("running_count", {"key_header": "h"})], [event("a", 1)])
        with self.assertRaises(ValueError):
            chain.restore_state(chain.snapshot_state()[:-3])


class UserSegmentsTest(unittest.TestCase):

    def test_a_prototype_segment_runs_with_its_config_and_its_state_is_pickled(self):
        chain, out = run([("tests.segments.Counter", {"start": 10})], [Message(b"x")], watermark=7)
        self.assertEqual([b"11", b"watermark 7"], [m.payload for m in out])
        copy, _ = run([("tests.segments.Counter", {})], [])
        copy.restore_state(chain.snapshot_state())
        copy.process(Message(b"y"), out.append)
        self.assertEqual(b"12", out[-1].payload)

    def test_what_a_segment_returns_is_checked(self):
        for segment, problem in (("ReturnsText", "payload is a str, not bytes"),
                                 ("ReturnsNumberHeader", "header 'n': 1; header names and values must be strings"),
                                 ("ReturnsOneMessage", "process() returned a Message, not a list of messages")):
            with self.subTest(segment), self.assertRaises(StepFailed) as failed:
                run([(f"tests.segments.{segment}", {})], [Message(b"x")])
            self.assertIn(f"step 's0' (tests.segments.{segment}) failed: TypeError: segment 's0' "
                          f"(tests.segments.{segment}): ", str(failed.exception))
            self.assertIn(problem, str(failed.exception))

    def test_a_state_that_cannot_be_pickled_names_the_segment(self):
        chain, _ = run([("tests.segments.HoldsALock", {})], [Message(b"x")])
        with self.assertRaises(TypeError) as failed:
            chain.snapshot_state()
        self.assertIn("segment 's0' (tests.segments.HoldsALock): its state cannot be pickled", str(failed.exception))

    def test_a_window_segment_gets_its_windows_assigned_and_fired_by_watermarks(self):
        config = {"label": "sum", "window": {"size_ms": 10, "key_header": "k"}}
        records = [Message(b"ab", {"k": "x"}, 3), Message(b"abc", {"k": "y"}, 5), Message(b"a", {"k": "x"}, 12)]
        chain, out = run([("tests.segments.SumPerWindow", config)], records, watermark=10)
        self.assertEqual([b"sum x@0: 2", b"sum y@0: 3"], [m.payload for m in out])
        copy, _ = run([("tests.segments.SumPerWindow", config)], [])
        copy.restore_state(chain.snapshot_state())
        copy.on_watermark(2 ** 63 - 1, out.append)
        self.assertEqual(b"sum x@10: 1", out[-1].payload)

    def test_a_window_segment_without_a_window_size_is_refused(self):
        with self.assertRaises(ValueError) as refused:
            run([("tests.segments.SumPerWindow", {"label": "sum"})], [])
        self.assertIn("is a window segment (add/trigger): its config needs window: {size_ms: N}",
                      str(refused.exception))

    def test_an_unknown_module_or_a_class_without_process_is_refused(self):
        with self.assertRaises(ValueError) as refused:
            run([("no_such_module.Segment", {})], [])
        self.assertIn("cannot import module no_such_module", str(refused.exception))
        with self.assertRaises(ValueError) as refused:
            run([("json.JSONDecoder", {})], [])
        self.assertIn("is not a class with a process(message) method", str(refused.exception))


class WorkerSegmentsTest(unittest.TestCase):
    """Steps without a type are served by the worker's own segment of the session's id (sentry_streams files)."""

    def test_an_untyped_step_is_served_by_the_segment_of_its_id_with_its_config(self):
        described = [("mycount", "", json.dumps({"start": 5}))]
        own = WorkerSegments("tests.segments.SEGMENTS").own_for(described, 1)
        chain = SegmentChain(described, own)
        out = []
        chain.process(Message(b"x"), out.append)
        self.assertEqual([b"6"], [m.payload for m in out])
        self.assertEqual([("mycount", "tests.segments.SEGMENTS[1]")], chain.names)

    def test_typed_steps_need_no_own_segments(self):
        self.assertIsNone(WorkerSegments().own_for([("s", "filter", "{}")], 3))

    def test_a_missing_table_or_segment_id_is_refused_naming_the_step(self):
        described = [("mybatch", "", "{}")]
        with self.assertRaises(ValueError) as refused:
            WorkerSegments().own_for(described, 0)
        self.assertIn("step 'mybatch' has no type, so it is segment 0 of the worker's own segments, but this worker "
                      "has none: start it with --segments module.NAME", str(refused.exception))
        with self.assertRaises(ValueError) as refused:
            WorkerSegments("tests.segments.SEGMENTS").own_for(described, 2)
        self.assertIn("tests.segments.SEGMENTS has no segment 2 (entries 0 to 1)", str(refused.exception))
        with self.assertRaises(ValueError) as refused:
            WorkerSegments("tests.segments.Echo").own_for(described, 0)
        self.assertIn("expected a list or dict of segment classes by segment id, found type", str(refused.exception))
        with self.assertRaises(ValueError) as refused:
            SegmentChain(described)
        self.assertIn("step 'mybatch' has no type and no segment of the worker's own serves it", str(refused.exception))


class CodecTest(unittest.TestCase):

    def test_a_record_round_trips(self):
        message = Message("€ payload".encode(), {"ключ": "värde", "": ""}, -5)
        body = codec.encode(message)
        self.assertEqual(message, codec.decode(body, 0, len(body)))

    def test_lengths_past_the_body_are_refused(self):
        body = bytearray(codec.encode(Message(b"abc", {"k": "v"}, 1)))
        for offset, value, problem in ((8, 1 << 20, "impossible header count"),
                                       (12, 1 << 20, "a header of 1048576 bytes runs past the body"),
                                       (len(body) - 7, 4, "payload length 4 does not match")):
            with self.subTest(problem):
                corrupt = bytearray(body)
                corrupt[offset:offset + 4] = value.to_bytes(4, "little")
                with self.assertRaises(CorruptRecord) as refused:
                    codec.decode(corrupt, 0, len(corrupt))
                self.assertIn(problem, str(refused.exception))


if __name__ == "__main__":
    unittest.main()
