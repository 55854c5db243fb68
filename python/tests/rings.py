"""Ring files as a bridge creates them, for tests: header written, mode 0600, in a private directory."""
import mmap
import os
import struct

from flink_bridge import layout as L


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
    import time
    return time.time_ns() // 1_000_000


class BridgeSide:
    """Writes the to-worker ring and reads the from-worker ring of a mapped file, as the bridge does."""

    def __init__(self, mapped, capacity=4096):
        self.mapped = mapped
        self.capacity = capacity
        self.tail = 0
        self.head = 0

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
        struct.pack_into("<q", self.mapped, L.TO_WORKER_CONTROL_OFFSET + L.PRODUCER_POSITION, self.tail)

    def answers(self):
        """Every answer frame published so far: (type, sequence, body)."""
        found = []
        control = L.FROM_WORKER_CONTROL_OFFSET
        data = L.HEADER_SIZE + self.capacity
        tail = struct.unpack_from("<q", self.mapped, control + L.PRODUCER_POSITION)[0]
        while self.head < tail:
            index = self.head % self.capacity
            length, frame_type = struct.unpack_from("<IH", self.mapped, data + index)
            if frame_type != L.PADDING:
                at = data + index
                sequence = struct.unpack_from("<q", self.mapped, at + 8)[0]
                found.append((frame_type, sequence, bytes(self.mapped[at + L.FRAME_HEADER:at + length])))
            self.head += L.align(length)
        struct.pack_into("<q", self.mapped, control + L.CONSUMER_POSITION, self.head)
        return found
