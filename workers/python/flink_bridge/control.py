"""The supervisor: the worker's control service (``flinkbridge.v1.BridgeControl``) and the streamed gRPC
data plane (``flinkbridge.v1.BridgeData``), one per TaskManager or container. Each session runs in its own
process (``flink_bridge.session_process``); this process only starts, forwards to and watches them.

The services are registered as generic gRPC handlers over the generated message classes, so no
service stubs need generating.
"""
import collections
import contextlib
import logging
import os
import queue
import secrets
import subprocess
import sys
import threading
import time

import grpc

from . import channel, state_pieces
from ._proto import control as control_pb2
from .ring import mark_closed
from .session import describe

LOG = logging.getLogger("flink_bridge.control")
CONTROL_SERVICE = "flinkbridge.v1.BridgeControl"
DATA_SERVICE = "flinkbridge.v1.BridgeData"
SESSION_KEY = "flink-bridge-session"
TOKEN_KEY = "flink-bridge-token"
# How long a new session process may take to build its steps and map its ring.
OPEN_TIMEOUT_SECONDS = 60
# How long a session process may take over a request (a batch, a snapshot) before it counts as hung and is
# killed: the bridge's own deadline (worker_timeout_ms) is what normally ends a slow session first.
REQUEST_TIMEOUT_SECONDS = 600
CLOSE_TIMEOUT_SECONDS = 5
# How often a stream waiting for its next batch checks whether the worker is asked to stop.
STOP_CHECK_SECONDS = 0.1
# How long a stopping worker still answers control calls once its sessions' data planes have ended.
STOP_GRACE_SECONDS = 1


def _relay_output(output, name):
    """Copies each line a session process writes on its standard output and error (its steps' prints, its log) into
    this worker's log, named by its session, until the process ends: a print must neither block on a full pipe nor
    fail on a closed one."""
    with output:
        for line in output:
            LOG.info("%s: %s", name, line.decode(errors="replace").rstrip("\r\n"))


class SessionHandle:
    """The supervisor's view of one session: its process, its channel (one request at a time) and what is
    needed to authenticate its stream and to close its ring if the process dies."""

    def __init__(self, session_id, name, token, shm, ring_path, process, connection):
        self.id = session_id
        self.name = name
        self.token = token
        self.shm = shm
        self.ring_path = ring_path
        self.process = process
        self.connection = connection
        self.lock = threading.Lock()
        # The worker is asked to stop: its gRPC stream ends (status OK) after the batch in hand, and says so here.
        self.stop_asked = threading.Event()
        self.stream_ended = threading.Event()
        self.stream_ended.set()

    def ask(self, *request, timeout=REQUEST_TIMEOUT_SECONDS):
        """One request, waiting at most ``timeout`` for the channel and as long again for the reply. A process
        that does not answer is hung: it is killed, so that nothing waits on it again."""
        if not self.lock.acquire(timeout=timeout):
            self.process.kill()
            raise channel.SessionGone(f"an earlier request took more than {timeout:g} s")
        try:
            return channel.ask(self.connection, request, timeout)
        except channel.SessionGone:
            self.process.kill()
            raise
        finally:
            self.lock.release()

    def gone(self):
        code = self.process.poll()
        return None if code is None else f"its process {self.process.pid} exited with code {code}"


class StreamGate:
    """Bounds the calls that hold a server thread for as long as their caller keeps them open (a session's data
    stream, a state transfer), so that the threads kept beside them for control calls stay free: past the bound such
    a call is refused, naming the bound, rather than leaving Health, OpenSession and SnapshotState to queue until the
    bridge's deadlines pass."""

    def __init__(self, limit):
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit)

    @contextlib.contextmanager
    def held(self, context, what):
        if not self._free.acquire(blocking=False):
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"{what} refused: the worker serves at most {self.limit} data streams and state transfers at "
                          f"once (--max-streams), and all are open")
        try:
            yield
        finally:
            self._free.release()


class Supervisor:

    def __init__(self, worker_id, ring_directory, session_env, segments_name=None, max_streams=64):
        """``segments_name``: the worker's own segments (``--segments module.NAME``), handed to each session;
        ``max_streams``: how many data streams and state transfers it serves at once (``StreamGate``)."""
        self.streams = StreamGate(max_streams)
        self.worker_id = worker_id
        self.ring_directory = ring_directory
        self.session_env = session_env
        self.segments_name = segments_name
        self.started_at = time.monotonic()
        self.sessions = {}
        self.sessions_lock = threading.Lock()
        self.received = collections.Counter()
        self.stopping = False

    # gRPC plumbing

    def handlers(self):
        def unary(method, handler, request_type, response_type):
            return grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=self.counted(f"{CONTROL_SERVICE}/{method}", request_type.FromString),
                response_serializer=response_type.SerializeToString)
        c = control_pb2
        control = grpc.method_handlers_generic_handler(CONTROL_SERVICE, {
            "OpenSession": unary("OpenSession", self.open_session, c.OpenSessionRequest, c.OpenSessionResponse),
            "RestoreState": grpc.stream_unary_rpc_method_handler(
                self.restore_state, request_deserializer=self.counted(f"{CONTROL_SERVICE}/RestoreState",
                                                                      c.RestoreStateRequest.FromString),
                response_serializer=c.Ack.SerializeToString),
            "SnapshotState": grpc.unary_stream_rpc_method_handler(
                self.snapshot_state, request_deserializer=self.counted(f"{CONTROL_SERVICE}/SnapshotState",
                                                                       c.SnapshotStateRequest.FromString),
                response_serializer=c.SnapshotStateResponse.SerializeToString),
            "NotifyCheckpoint": unary("NotifyCheckpoint", self.notify_checkpoint, c.CheckpointNotification, c.Ack),
            "CloseSession": unary("CloseSession", self.close_session, c.SessionRef, c.Ack),
            "Health": unary("Health", self.health, c.HealthRequest, c.HealthResponse),
        })
        # Batches pass through as bytes: the session process parses them.
        data = grpc.method_handlers_generic_handler(DATA_SERVICE, {
            "Exchange": grpc.stream_stream_rpc_method_handler(
                self.exchange, request_deserializer=self.counted(f"{DATA_SERVICE}/Exchange", bytes),
                response_serializer=bytes),
        })
        return control, data

    def counted(self, method, parse):
        def deserialize(raw):
            self.received[method] += len(raw)
            return parse(raw)
        return deserialize

    # The control service

    def open_session(self, request, context):
        if request.protocol_version != control_pb2.PROTOCOL_VERSION_CURRENT:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"protocol version {request.protocol_version} is not supported; this worker speaks "
                          f"{control_pb2.PROTOCOL_VERSION_CURRENT}")
        if request.transport not in (control_pb2.TRANSPORT_KIND_GRPC, control_pb2.TRANSPORT_KIND_SHM):
            context.abort(grpc.StatusCode.UNIMPLEMENTED,
                          f"transport {control_pb2.TransportKind.Name(request.transport)} is not served by this worker")
        if not request.token:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "a session needs a token")
        if self.stopping:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"worker {self.worker_id} is stopping, as asked")
        # 128 random bits: knowing the worker's id (Health tells it) must not name a session.
        session_id = f"{self.worker_id}-{secrets.token_hex(16)}"
        name = describe(session_id, request.identity)
        ours, theirs = channel.pair()
        with theirs:
            process = subprocess.Popen(
                [sys.executable, "-m", "flink_bridge.session_process", "--fd", str(theirs.fileno()),
                 "--parent-pid", str(os.getpid())],
                pass_fds=(theirs.fileno(),), env=self.session_env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=_relay_output, args=(process.stdout, name), name=f"output-{process.pid}",
                         daemon=True).start()
        shm = request.transport == control_pb2.TRANSPORT_KIND_SHM
        handle = SessionHandle(session_id, name, request.token, shm, request.ring.path if shm else None,
                               process, ours)
        try:
            ours.send((request.SerializeToString(), session_id, self.ring_directory, self.segments_name))
            if not ours.poll(OPEN_TIMEOUT_SECONDS):
                raise channel.SessionGone(f"it did not open within {OPEN_TIMEOUT_SECONDS} s")
            reply = ours.recv()
        except (channel.SessionGone, EOFError, OSError) as e:
            self._stop(handle)
            context.abort(grpc.StatusCode.INTERNAL, f"{name}: its process failed to start: {e}")
        if reply[0] != "ok":
            self._stop(handle)
            context.abort(getattr(grpc.StatusCode, reply[1]), reply[2])
        with self.sessions_lock:
            self.sessions[session_id] = handle
        threading.Thread(target=self._watch, args=(handle,), name=f"watch-{process.pid}", daemon=True).start()
        cells = [control_pb2.CellDeclaration(step=step, name=cell, kind=kind, ttl_ms=ttl_ms)
                 for step, cell, kind, ttl_ms in reply[2]]
        timers = reply[3]
        LOG.info("opened %s with %d step(s), %d cell(s) and %s, %s, over %s in process %d", name, len(request.steps),
                 len(cells), "timers" if timers else "no timers", "keyed" if request.keyed else "not keyed",
                 control_pb2.TransportKind.Name(request.transport), process.pid)
        return control_pb2.OpenSessionResponse(session_id=session_id, worker_id=self.worker_id,
                                               protocol_version=control_pb2.PROTOCOL_VERSION_CURRENT, cells=cells,
                                               timers=timers)

    def snapshot_state(self, request, context):
        states = self._ask(request.session_id, context, "snapshot")
        for pieces in state_pieces.messages(states):
            yield control_pb2.SnapshotStateResponse(states=pieces)

    def restore_state(self, requests, context):
        with self.streams.held(context, "RestoreState"):
            return self._restore_state(requests, context)

    def _restore_state(self, requests, context):
        assembler = state_pieces.Assembler()
        session_id = None
        for request in requests:
            if session_id not in (None, request.session_id):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"one RestoreState stream names sessions {session_id} and {request.session_id}")
            session_id = request.session_id
            try:
                for piece in request.states:
                    assembler.add(piece)
            except ValueError as e:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        try:
            states = assembler.finish()
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(e))
        self._ask(session_id, context, "restore", states)
        return control_pb2.Ack()

    def notify_checkpoint(self, request, context):
        self._ask(request.session_id, context, "notify", request.checkpoint_id, request.completed)
        return control_pb2.Ack()

    def close_session(self, request, context):
        with self.sessions_lock:
            handle = self.sessions.pop(request.session_id, None)
        if handle is not None:
            self._close(handle)
            LOG.info("closed %s", handle.name)
        return control_pb2.Ack()

    def health(self, request, context):
        with self.sessions_lock:
            open_sessions = len(self.sessions)
        return control_pb2.HealthResponse(worker_id=self.worker_id, open_sessions=open_sessions,
                                          uptime_millis=int((time.monotonic() - self.started_at) * 1000),
                                          received_bytes=dict(self.received))

    # The streamed data plane

    def exchange(self, batches, context):
        with self.streams.held(context, "a data stream"):
            yield from self._exchange(batches, context)

    def _exchange(self, batches, context):
        metadata = dict(context.invocation_metadata())
        handle = self._session(metadata.get(SESSION_KEY, ""), context)
        if not secrets.compare_digest(handle.token.encode(), metadata.get(TOKEN_KEY, "").encode()):
            context.abort(grpc.StatusCode.PERMISSION_DENIED, f"{handle.name}: token does not match")
        if handle.shm:
            context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                          f"{handle.name} is served over its shared-memory ring, not a gRPC stream")
        # The call's end, whatever ends it, ends the session: a bridge whose process died leaves the handler waiting
        # for its next batch on some grpcio versions under load, while the termination callback still comes.
        def end_session():
            self._end(handle.id, "its data stream ended, so the bridge is gone")
        if not context.add_callback(lambda: threading.Thread(target=end_session, name="session-end",
                                                             daemon=True).start()):
            end_session()  # the call has ended already
            return
        # Batches are read on a thread of their own, one ahead, so that a stop ends an idle stream too.
        inbox = queue.Queue(maxsize=1)
        handle.stream_ended.clear()
        threading.Thread(target=_read_batches, args=(batches, inbox, handle.stop_asked), name="stream-reader",
                         daemon=True).start()
        try:
            while (batch := _next_batch(inbox, handle.stop_asked)) is not _END:
                yield from self._reply(handle, context, handle.ask("batch", batch))
        except channel.SessionGone:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{handle.name}: {handle.gone() or 'its process is gone'}")
        finally:
            handle.stream_ended.set()
        if handle.stop_asked.is_set():
            LOG.info("%s: stopped as asked, every input batch it took answered", handle.name)

    # Sessions

    def _session(self, session_id, context):
        with self.sessions_lock:
            handle = self.sessions.get(session_id)
        if handle is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no open session {session_id}")
        return handle

    def _ask(self, session_id, context, *request):
        handle = self._session(session_id, context)
        try:
            reply = handle.ask(*request)
        except channel.SessionGone:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"{handle.name}: {handle.gone() or 'its process is gone'}")
        return self._reply(handle, context, reply)

    @staticmethod
    def _reply(handle, context, reply):
        if reply[0] != "ok":
            context.abort(getattr(grpc.StatusCode, reply[1]), reply[2])
        return reply[1]

    def _watch(self, handle):
        """Ends the session when its process dies on its own; the bridge learns it from the closed ring (shm)
        or from its stream and next control call (gRPC)."""
        code = handle.process.wait()
        with self.sessions_lock:
            ended = self.sessions.pop(handle.id, None) is not None
        if ended:
            LOG.warning("%s: ended: its process %d exited with code %d", handle.name, handle.process.pid, code)
            if handle.ring_path:
                mark_closed(handle.ring_path)
            handle.connection.close()

    def _end(self, session_id, why):
        with self.sessions_lock:
            handle = self.sessions.pop(session_id, None)
        if handle is not None:
            LOG.info("%s: ended: %s", handle.name, why)
            self._close(handle)

    def _close(self, handle):
        try:
            handle.ask("close", timeout=CLOSE_TIMEOUT_SECONDS)
        except channel.SessionGone as e:
            LOG.warning("%s: closing it failed (%s); its process is stopped", handle.name, e)
        self._stop(handle)

    @staticmethod
    def _stop(handle):
        handle.connection.close()
        try:
            handle.process.wait(5)
        except subprocess.TimeoutExpired:
            handle.process.kill()
            handle.process.wait()

    def stop_all_as_asked(self):
        """The worker is asked to stop (SIGTERM), for an upgrade say: no new session opens, and each open one
        answers the inputs it has read and ends as stopped (its ring's closed flag, or its stream completed), which
        tells the bridge to move it to a new worker without restarting the job."""
        self.stopping = True
        with self.sessions_lock:
            handles = list(self.sessions.values())
        for handle in handles:
            handle.stop_asked.set()
        for handle in handles:
            if handle.shm:
                try:
                    handle.ask("stop", timeout=CLOSE_TIMEOUT_SECONDS)
                except channel.SessionGone as e:
                    LOG.warning("%s: stopping it failed (%s); its process is stopped", handle.name, e)
            else:
                handle.stream_ended.wait(CLOSE_TIMEOUT_SECONDS)
        if handles:
            # A bridge that took a barrier's answer just before its stream ended still takes that barrier's state.
            time.sleep(STOP_GRACE_SECONDS)
        with self.sessions_lock:
            self.sessions.clear()
        for handle in handles:
            if handle.shm:
                self._stop(handle)
            else:
                self._close(handle)

    def close_all(self):
        with self.sessions_lock:
            handles = list(self.sessions.values())
            self.sessions.clear()
        for handle in handles:
            self._close(handle)


_END = object()


def _read_batches(batches, inbox, stop):
    """Hands the stream's input batches to its handler until the stream ends or the worker is asked to stop."""
    try:
        for batch in batches:
            if not _put(inbox, batch, stop):
                return
    except grpc.RpcError:
        pass  # the stream broke: the call's termination callback ends the session
    _put(inbox, _END, stop)


def _put(inbox, item, stop):
    while not stop.is_set():
        try:
            inbox.put(item, timeout=STOP_CHECK_SECONDS)
            return True
        except queue.Full:
            pass
    return False


def _next_batch(inbox, stop):
    """The next input batch, or _END once the stream ended or the worker is asked to stop (a batch not yet taken
    then stays unanswered: the bridge sends it again to the next worker)."""
    while not stop.is_set():
        try:
            return inbox.get(timeout=STOP_CHECK_SECONDS)
        except queue.Empty:
            pass
    return _END
