"""Ring files as a bridge creates them, for tests: header written, mode 0600, in a private directory."""
import ctypes
import mmap
import os
import struct
import tempfile
import threading
import time

from flink_bridge import layout as L
from flink_bridge.ring import RingFile
from flink_bridge.shm_loop import ShmLoop


def create(directory, name="s.ring", token="secret", capacity=4096, heartbeat_ms=None):
    path = os.path.join(directory, name)
    size = L.file_size(capacity, capacity)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    os.ftruncate(fd, size)
    mapped = mmap.mmap(fd, size)
    os.close(fd)
    struct.pack_into("<IIII", mapped, L.VERSION_OFFSET, L.VERSION, L.HEADER_SIZE, capacity, capacity)
    mapped[L.TOKEN_OFFSET:L.TOKEN_OFFSET + len(token)] = token.encode()
    struct.pack_into("<q", mapped, L.BRIDGE_HEARTBEAT_OFFSET, heartbeat_ms if heartbeat_ms is not None
                     else _now_ms())
    struct.pack_into("<Q", mapped, L.MAGIC_OFFSET, L.MAGIC)
    return path, mapped


def _now_ms():
    return time.time_ns() // 1_000_000


def word64(mapped, offset):
    """A position the worker reads while the test writes it: one store (struct.pack_into zeroes first)."""
    return ctypes.c_int64.from_buffer(mapped, offset)


class BridgeSide:
    """Writes the to-worker ring and reads the from-worker ring of a mapped file, as the bridge does."""

    def __init__(self, mapped, capacity=4096):
        self.mapped = mapped
        self.capacity = capacity
        self.tail = 0
        self.head = 0
        self.inputs_published = word64(mapped, L.TO_WORKER_CONTROL_OFFSET + L.PRODUCER_POSITION)
        self.inputs_taken = word64(mapped, L.TO_WORKER_CONTROL_OFFSET + L.CONSUMER_POSITION)
        self.answers_published = word64(mapped, L.FROM_WORKER_CONTROL_OFFSET + L.PRODUCER_POSITION)
        self.answers_taken = word64(mapped, L.FROM_WORKER_CONTROL_OFFSET + L.CONSUMER_POSITION)

    def send(self, frame_type, sequence, body=b"", flags=0):
        length = L.FRAME_HEADER + len(body)
        aligned = L.align(length)
        index = self.tail % self.capacity
        if aligned > self.capacity - index:
            struct.pack_into("<IHH", self.mapped, L.HEADER_SIZE + index, self.capacity - index, L.PADDING, 0)
            self.tail += self.capacity - index
            index = 0
        at = L.HEADER_SIZE + index
        L.FRAME.pack_into(self.mapped, at, length, frame_type, flags, sequence)
        self.mapped[at + L.FRAME_HEADER:at + length] = body
        self.tail += aligned
        self.inputs_published.value = self.tail

    def answers(self):
        """Every answer frame published so far: (type, sequence, body)."""
        found = []
        data = L.HEADER_SIZE + self.capacity
        tail = self.answers_published.value
        while self.head < tail:
            index = self.head % self.capacity
            length, frame_type = struct.unpack_from("<IH", self.mapped, data + index)
            if frame_type != L.PADDING:
                at = data + index
                sequence = struct.unpack_from("<q", self.mapped, at + 8)[0]
                found.append((frame_type, sequence, bytes(self.mapped[at + L.FRAME_HEADER:at + length])))
            self.head += L.align(length)
        self.answers_taken.value = self.head
        return found


def readable(found, decoders):
    """Answer frames, (type, sequence, body) each, with an OUTPUT's body as its payload and the body of a frame type in
    ``decoders`` (type -> decoder) decoded."""
    from flink_bridge import codec
    return [(frame_type, sequence, codec.decode(body, 0, len(body)).payload if frame_type == L.OUTPUT
             else decoders[frame_type](body) if frame_type in decoders else body)
            for frame_type, sequence, body in found]


def serve_keyed(test, steps, dead_letter=(), fails=True):
    """A keyed session of ``steps`` served over a new ring until ``test`` ends; ``fails``: some input fails, which the
    session logs (the test expects the log)."""
    from flink_bridge.session import Session
    if fails:
        test.enterContext(test.assertLogs("flink_bridge", "DEBUG"))
    served = ServedRing(tempfile.mkdtemp(), Session("session t", steps, dead_letter=dead_letter, keyed=True))
    test.addCleanup(served.stop)
    return served


class ServedRing:
    """A session served over a new ring in ``directory`` by the worker's ring loop, on a thread of its own, and the
    bridge's side of the ring."""

    def __init__(self, directory, session):
        self.path, self.mapped = create(directory)
        self.bridge = BridgeSide(self.mapped)
        self.loop = ShmLoop(session, RingFile(self.path, "secret"), 5000)
        self.thread = threading.Thread(target=self.loop.run)
        self.thread.start()

    def await_answers(self, count):
        """At least ``count`` answer frames, (type, sequence, body) each, waiting up to 5 s for them."""
        found = []
        for _ in range(500):
            found += self.bridge.answers()
            if len(found) >= count:
                return found
            time.sleep(0.01)
        raise AssertionError(f"only {len(found)} of {count} answers: {found}")

    def stop(self):
        self.loop.stopping = True
        self.thread.join(5)
