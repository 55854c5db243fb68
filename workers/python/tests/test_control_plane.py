"""Control calls are served whatever the number of open streams: a data stream or a state transfer holds a server
thread for as long as its caller keeps it open, so the worker keeps threads for control beside them and refuses
streams past its bound (--max-streams), naming it, instead of letting Health, OpenSession and SnapshotState queue
until the bridge's deadlines pass and it kills the worker."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest

import grpc

from flink_bridge._proto import control as control_pb2
from flink_bridge._proto import data as data_pb2

SECRET = "control-plane-test-secret"
RESTORE = "/flinkbridge.v1.BridgeControl/RestoreState"
HEALTH = "/flinkbridge.v1.BridgeControl/Health"


class Worker:
    """The Python worker on a Unix socket of its own, with the given extra arguments."""

    def __init__(self, *arguments):
        self.dir = tempfile.mkdtemp()
        socket_path = os.path.join(self.dir, "worker.sock")
        runtime = os.path.dirname(os.path.dirname(os.path.abspath(control_pb2.__file__)))
        self.process = subprocess.Popen(
            [sys.executable, "-B", os.path.dirname(runtime), "--unix-socket-path", socket_path,
             "--ring-dir", self.dir, *arguments],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env=dict(os.environ, FLINK_BRIDGE_SECRET=SECRET))
        listening = self.process.stdout.readline()
        if not listening.startswith("flink-bridge worker listening on "):
            raise AssertionError(f"the worker did not start: {listening!r}")
        self.channel = grpc.insecure_channel(f"unix:{socket_path}")
        self.release = threading.Event()
        self.held = []

    def hold_restore_streams(self, count):
        """``count`` RestoreState calls that send nothing until released, as a caller that never ends them."""
        def nothing_until_released():
            self.release.wait()
            return
            yield
        call = self.channel.stream_unary(RESTORE, request_serializer=lambda m: m.SerializeToString(),
                                         response_deserializer=control_pb2.Ack.FromString)
        for _ in range(count):
            self.held.append(call.future(nothing_until_released(), metadata=(("flink-bridge-secret", SECRET),),
                                         timeout=60))

    def open_session(self, steps, keyed, version=control_pb2.PROTOCOL_VERSION_CURRENT, on_error=None):
        """OpenSession of a session over gRPC (token "t") of ``steps``, (name, type, config JSON) each, with
        ``on_error`` the steps' on_error in order where given."""
        on_error = on_error or [control_pb2.ON_ERROR_FAIL] * len(steps)
        return self.channel.unary_unary(
            "/flinkbridge.v1.BridgeControl/OpenSession", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=control_pb2.OpenSessionResponse.FromString)(control_pb2.OpenSessionRequest(
                protocol_version=version, transport=control_pb2.TRANSPORT_KIND_GRPC, token="t", keyed=keyed,
                identity=control_pb2.SessionIdentity(job_name="test", operator_name="op"),
                steps=[control_pb2.StepSpec(name=name, type=step_type, config_json=config, on_error=step_on_error)
                       for (name, step_type, config), step_on_error in zip(steps, on_error)]),
            metadata=(("flink-bridge-secret", SECRET),), timeout=30)

    def exchange(self, session_id, batch):
        """The answer frames to one input batch on the Exchange stream of session ``session_id`` (token "t")."""
        answers = self.channel.stream_stream(
            "/flinkbridge.v1.BridgeData/Exchange", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=data_pb2.FrameBatch.FromString)(
                iter([batch]), metadata=(("flink-bridge-secret", SECRET), ("flink-bridge-session", session_id),
                                         ("flink-bridge-token", "t")), timeout=30)
        try:
            return list(next(answers).frames)
        finally:
            answers.cancel()

    def health(self, timeout):
        call = self.channel.unary_unary(HEALTH, request_serializer=lambda m: m.SerializeToString(),
                                        response_deserializer=control_pb2.HealthResponse.FromString)
        return call(control_pb2.HealthRequest(), metadata=(("flink-bridge-secret", SECRET),), timeout=timeout)

    def close(self):
        self.release.set()
        for future in self.held:
            future.cancel()
        self.channel.close()
        self.process.terminate()
        self.process.wait(10)
        self.process.stdout.close()
        shutil.rmtree(self.dir)


class WorkerTest(unittest.TestCase):
    """Tests of one worker, started for the class."""

    @classmethod
    def setUpClass(cls):
        cls.worker = Worker()

    @classmethod
    def tearDownClass(cls):
        cls.worker.close()


class ControlPlaneTest(unittest.TestCase):

    def test_health_answers_with_forty_state_transfers_held_open(self):
        worker = Worker()
        try:
            worker.hold_restore_streams(40)
            # Past the 32 threads the worker once had in all, every one of them held by a stream.
            self.assertGreater(worker.health(timeout=5).uptime_millis, 0)
        finally:
            worker.close()

    def test_a_stream_past_the_bound_is_refused_naming_it_and_control_goes_on(self):
        worker = Worker("--max-streams", "4")
        try:
            worker.hold_restore_streams(4)
            worker.health(timeout=5)
            worker.hold_restore_streams(1)
            with self.assertRaises(grpc.RpcError) as refused:
                worker.held[-1].result(timeout=10)
            self.assertEqual(grpc.StatusCode.RESOURCE_EXHAUSTED, refused.exception.code())
            self.assertIn("at most 4 data streams and state transfers at once (--max-streams)",
                          refused.exception.details())
            worker.health(timeout=5)
        finally:
            worker.close()


if __name__ == "__main__":
    unittest.main()
