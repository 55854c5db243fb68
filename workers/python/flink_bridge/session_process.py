"""One session's process: ``python3 -m flink_bridge.session_process --fd N --parent-pid P``, started by the
supervisor (``flink_bridge.control``) for every session, so that no two Flink slots share a GIL.

It receives the session's OpenSessionRequest over its channel, builds the steps, maps the ring (shm) and
answers whether the session is open; then its main thread serves the ring while a second thread answers
the supervisor's requests (snapshot, restore, checkpoint notifications, gRPC stream batches, close). It ends
when the session closes, the bridge is lost, or its supervisor is gone (its parent is no longer P).
"""
import argparse
import gc
import logging
import os
import sys
import threading
import time

from . import channel, errors
from ._proto import control as control_pb2
from ._proto import data as data_pb2
from .cells import CellsNotKeyed
from .timers import TimersNotKeyed
from .ring import RingError, RingFile, check_ring_path
from .sdk import Message
from .segments import UNKEYED, WorkerSegments
from .session import Session, describe
from .shm_loop import ShmLoop

LOG = logging.getLogger("flink_bridge.session")
PARENT_CHECK_SECONDS = 0.2
# How long closing waits for the ring loop to leave (it checks every 100 ms).
CLOSE_WAIT_SECONDS = 5


class StreamAnswers:
    """Answers of one gRPC batch, as frames of the answer batch."""

    # A barrier's cell writes: one key's at most this many bytes per frame (split_batch cuts the batch itself).
    cell_frame_bytes = 1 << 20
    # An input's timer changes: one frame, in a batch of its own if need be, under gRPC's limit.
    timer_frame_bytes = 32 << 20

    def __init__(self):
        self.batch = data_pb2.FrameBatch()
        self.sequence = -1

    def output(self, message):
        _fill(self.batch.frames.add(type=data_pb2.OUTPUT, sequence=self.sequence).record, message)

    def encode(self, message):
        """A held output: a frame of its own, added to the batch once its input is done."""
        frame = data_pb2.Frame(type=data_pb2.OUTPUT, sequence=self.sequence)
        _fill(frame.record, message)
        return frame

    def output_encoded(self, frame):
        self.batch.frames.append(frame)

    def end_of_outputs(self, sequence):
        self.batch.frames.add(type=data_pb2.END_OF_OUTPUTS, sequence=sequence)

    def cell_writes(self, key_cells):
        """One key's cell writes, part of the answer to barrier ``self.sequence``."""
        self.batch.frames.add(type=data_pb2.CELL_WRITES, sequence=self.sequence).cells.CopyFrom(key_cells)

    def timers(self, timer_changes):
        """The timer changes of input ``self.sequence``, before its end marker."""
        self.batch.frames.add(type=data_pb2.TIMERS, sequence=self.sequence).timers.CopyFrom(timer_changes)

    def error(self, sequence, text):
        """The text, cut to what the bridge takes (docs/protocol.md, "Error texts"); the session logged it whole."""
        self.batch.frames.add(type=data_pb2.ERROR, sequence=sequence, error=errors.cut(text))

    def input_failed(self, sequence, step, error_class, message):
        """The message cut as an error's text is; the session logged it whole."""
        self.batch.frames.add(type=data_pb2.INPUT_FAILED, sequence=sequence, failure=data_pb2.InputFailure(
            step=step, error_class=error_class, message=errors.cut(message)))


def _fill(record, message):
    record.payload = message.payload
    record.headers.update(message.headers)
    record.timestamp = message.timestamp


def serve_batch(session, request):
    """The streamed gRPC data plane: a batch of input frames in, a batch of answer frames out."""
    answers = StreamAnswers()
    for frame in data_pb2.FrameBatch.FromString(request).frames:
        if frame.type == data_pb2.RECORD:
            record = frame.record
            session.record(frame.sequence, frame.key_group if frame.HasField("key_group") else UNKEYED,
                           Message(record.payload, dict(record.headers), record.timestamp), answers, frame.key)
        elif frame.type == data_pb2.TIMER:
            session.timer(frame.sequence, frame.key_group if frame.HasField("key_group") else UNKEYED, frame.key,
                          frame.firing, answers)
        elif frame.type == data_pb2.LOAD:
            session.load(frame.sequence, frame.cells)
        elif frame.type == data_pb2.WATERMARK:
            session.watermark(frame.sequence, frame.watermark, answers)
        elif frame.type == data_pb2.BARRIER:
            session.barrier(frame.sequence, answers, list(frame.evict))
        elif frame.type == data_pb2.CLOCK:
            session.clock(frame.sequence, frame.processing_time, answers)
        else:
            answers.error(frame.sequence, f"{session.name}: unexpected frame type "
                                          f"{data_pb2.FrameType.Name(frame.type)} from the bridge")
    return split_batch(answers.batch)


# A batch is cut once it holds this many bytes, as the bridge cuts its own (GrpcChannels.MESSAGE_BUDGET_BYTES),
# so that a step answering with more than it was given never makes a message over gRPC's limit (64 MiB).
MAX_BATCH_BYTES = 4 << 20
# The most one cell write takes over gRPC (its key, entry key and value): it goes in a frame, a frame in a batch of
# its own if need be, under gRPC's limit.
MAX_GRPC_WRITE_BYTES = 32 << 20


def split_batch(batch):
    """The serialized answer batch, or its parts in order when it holds more than MAX_BATCH_BYTES."""
    if batch.ByteSize() <= MAX_BATCH_BYTES:
        return [batch.SerializeToString()]
    parts, part, size = [], data_pb2.FrameBatch(), 0
    for frame in batch.frames:
        part.frames.append(frame)
        size += frame.ByteSize()
        if size >= MAX_BATCH_BYTES:
            parts.append(part.SerializeToString())
            part, size = data_pb2.FrameBatch(), 0
    if part.frames:
        parts.append(part.SerializeToString())
    return parts


class SessionProcess:

    def __init__(self, connection, session, loop):
        self.connection = connection
        self.session = session
        self.loop = loop
        self.done = threading.Event()
        self.loop_done = threading.Event()

    def answer_requests(self):
        """The supervisor's requests, one at a time, until it closes the session or goes away."""
        try:
            while True:
                request = self.connection.recv()
                kind = request[0]
                if kind == "close":
                    self.close()
                    self.connection.send(("ok", None))
                    return
                if kind == "stop":
                    self.close(stopped=True)
                    self.connection.send(("ok", None))
                    return
                try:
                    self.connection.send(("ok", self.handle(kind, request[1:])))
                except Exception as e:
                    LOG.warning("%s: %s failed", self.session.name, kind, exc_info=True)
                    self.connection.send(("error", "INTERNAL",
                                          errors.cut(f"{self.session.name}: {type(e).__name__}: {e}")))
        except (EOFError, OSError):
            LOG.info("%s: ending: the supervisor closed its channel", self.session.name)
            self.close()
        finally:
            self.done.set()

    def handle(self, kind, arguments):
        if kind == "batch":
            return serve_batch(self.session, arguments[0])
        if kind == "snapshot":
            return self.session.snapshot()
        if kind == "restore":
            return self.session.restore(arguments[0])
        if kind == "notify":
            return self.session.checkpoint_finished(*arguments)
        raise ValueError(f"unknown request {kind}")

    def close(self, stopped=False):
        """``stopped``: the worker is asked to stop, so the ring loop answers what it has read and closes the ring
        as stopped; otherwise it leaves at once."""
        if self.loop is not None:
            if stopped:
                self.loop.stop_asked = True
            else:
                self.loop.stopping = True
            self.loop_done.wait(CLOSE_WAIT_SECONDS)
        self.session.close()

    def serve(self):
        threading.Thread(target=self.answer_requests, name="requests", daemon=True).start()
        if self.loop is None:
            self.done.wait()
            return
        try:
            self.loop.run()
        finally:
            self.loop_done.set()
        # A loop that ended by itself (the bridge left or was lost) ends the process; a close or stop waits for
        # its reply.
        if self.loop.stopping or self.loop.stop_asked:
            self.done.wait(CLOSE_WAIT_SECONDS)


def open_session(connection):
    """Builds the session from the supervisor's first message and answers whether it is open."""
    request, session_id, ring_directory, segments_name = connection.recv()
    opened = control_pb2.OpenSessionRequest.FromString(request)
    name = describe(session_id, opened.identity)
    try:
        described = [(step.name, step.type, step.config_json) for step in opened.steps]
        dead_letter = [index for index, step in enumerate(opened.steps)
                       if step.on_error == control_pb2.ON_ERROR_DEAD_LETTER]
        session = Session(name, described, WorkerSegments(segments_name).own_for(described, opened.segment_id),
                          dead_letter, opened.keyed)
    except (CellsNotKeyed, TimersNotKeyed) as e:
        connection.send(("error", "FAILED_PRECONDITION", errors.for_bridge(f"{name}: {e}", LOG)))
        return None, None
    except Exception as e:
        connection.send(("error", "INVALID_ARGUMENT",
                         errors.for_bridge(f"{name}: cannot build segment {opened.segment_id}: {e}", LOG)))
        return None, None
    loop = None
    if opened.transport == control_pb2.TRANSPORT_KIND_SHM:
        ring = opened.ring
        if not ring.path or ring.liveness_timeout_ms == 0:
            connection.send(("error", "INVALID_ARGUMENT",
                             f"{name}: an shm session needs a ring path and a liveness timeout"))
            return None, None
        try:
            mapped = RingFile(check_ring_path(ring_directory, ring.path), opened.token)
        except (RingError, OSError) as e:
            connection.send(("error", "FAILED_PRECONDITION",
                             errors.for_bridge(f"{name}: cannot use the ring: {e}", LOG)))
            return None, None
        loop = ShmLoop(session, mapped, ring.liveness_timeout_ms)
    else:
        session.cells.max_write_bytes = MAX_GRPC_WRITE_BYTES
    # The supervisor answers OpenSession with the declared cells, (step, name, kind, ttl_ms) each in id order, and
    # whether the steps may set timers.
    connection.send(("ok", os.getpid(), [(spec.step, spec.name, spec.kind, spec.ttl_ms)
                                         for spec in session.declared_cells], session.declared_timers))
    return session, loop


def watch_parent(parent_pid):
    """Ends this process once its supervisor is gone: an orphan gets a new parent."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    LOG.error("the supervisor (pid %d) is gone; exiting", parent_pid)
    os._exit(3)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="flink_bridge.session_process")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    # The supervisor logs each line this process writes, stamped and named by its session (control.py): prints
    # reach it line by line.
    sys.stdout.reconfigure(line_buffering=True)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format=f"%(levelname)s session process {os.getpid()}: %(message)s")
    if os.getppid() != args.parent_pid:
        sys.exit(3)
    threading.Thread(target=watch_parent, args=(args.parent_pid,), name="parent-watch", daemon=True).start()
    connection = channel.attach(args.fd)
    session, loop = open_session(connection)
    if session is None:
        return
    LOG.info("opened %s", session.name)
    # What was built so far lives as long as the session: keep the cyclic collector off it, and let it run
    # less often over the many short-lived records.
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    SessionProcess(connection, session, loop).serve()
    LOG.info("%s: ended", session.name)


if __name__ == "__main__":
    main()
