"""The worker's side of a session's ring file (docs/protocol.md, "The ring file a session names"): checked,
mapped, beaten every 100 ms, and read and written through one consumer and one producer.

The positions read from a control block are the peer's to write, so each is checked before it indexes the
ring, and every frame length against the bytes published (see ``Consumer.poll``).

Every word the peer reads while this side writes it (positions, futex words, waiting counts, heartbeat,
closed flag) is accessed through a ctypes view: one aligned load or store. ``struct.pack_into`` must never
write them: it zeroes its target before packing, so the peer could read 0 in between.
"""
import ctypes
import hmac
import mmap
import os
import stat
import struct
import threading
import time

from . import futex
from . import layout as L
from .segments import TransportFailed

SUFFIX = ".ring"
HEARTBEAT_SECONDS = 0.1
# Spins before a wait sleeps on its futex: a busy peer answers within microseconds.
SPINS = 200


class RingError(TransportFailed):
    """A ring that cannot be used, or a peer that broke the layout's rules: ends the session."""


def now_millis():
    return time.time_ns() // 1_000_000


def check_ring_path(directory, ring_path):
    """The path to open, if ``ring_path`` is a ``.ring`` file directly in ``directory``, a regular file (no
    link) of this user with mode 0600; otherwise a RingError naming the rule broken and nothing of the file."""
    directory = os.path.abspath(directory)
    ring = os.path.abspath(ring_path)
    if os.path.dirname(ring) != directory or not ring.endswith(SUFFIX):
        raise RingError(f"ring path {ring_path} is not a {SUFFIX} file in this worker's ring directory {directory}"
                        " (start the worker with --ring-dir, or set flink-bridge.shm.directory, so that the two agree)")
    try:
        info = os.lstat(ring)
    except OSError as e:
        raise RingError(f"ring path {ring} cannot be checked: {type(e).__name__}") from None
    if not stat.S_ISREG(info.st_mode):
        raise RingError(f"ring path {ring} is not a regular file")
    if info.st_uid != os.geteuid():
        raise RingError(f"ring file {ring} belongs to uid {info.st_uid}, not to this user")
    if stat.S_IMODE(info.st_mode) != 0o600:
        raise RingError(f"ring file {ring} has mode {stat.filemode(info.st_mode)[1:]}; a ring file is rw-------")
    return ring


def _check_capacity(ring, capacity):
    if capacity < L.MIN_CAPACITY or capacity & (capacity - 1):
        raise RingError(f"the {ring} ring capacity {capacity} must be a power of two of at least {L.MIN_CAPACITY}")


def _token_bytes(token):
    try:
        text = token.encode("ascii")
    except UnicodeEncodeError:
        text = b""
    if not 0 < len(text) <= L.TOKEN_LENGTH:
        raise RingError(f"a session token must be 1 to {L.TOKEN_LENGTH} ASCII characters")
    return text.ljust(L.TOKEN_LENGTH, b"\0")


class RingFile:
    """A ring file mapped by the worker after its header and token were checked."""

    def __init__(self, path, token):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            size = os.fstat(fd).st_size
            if size < L.HEADER_SIZE:
                raise RingError(f"{path}: not a ring file: shorter than a ring file's header")
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        try:
            self._check_header(size, token)
        except BaseException:
            self._map.close()
            raise
        self._anchor = ctypes.c_char.from_buffer(self._map)
        self.base = ctypes.addressof(self._anchor)
        self.to_worker_capacity = L.UINT32.unpack_from(self._map, L.TO_WORKER_CAPACITY_OFFSET)[0]
        self.from_worker_capacity = L.UINT32.unpack_from(self._map, L.FROM_WORKER_CAPACITY_OFFSET)[0]
        self.word32(L.WORKER_PID_OFFSET).value = os.getpid()
        self._heartbeat = self.word64(L.WORKER_HEARTBEAT_OFFSET)
        self._bridge_heartbeat = self.word64(L.BRIDGE_HEARTBEAT_OFFSET)
        self._closed_flag = self.word32(L.CLOSED_OFFSET)
        self._closed = False
        self._lock = threading.Lock()
        self.heartbeat()
        self._beating = threading.Thread(target=self._beat, name="ring-heartbeat", daemon=True)
        self._beating.start()

    def _check_header(self, size, token):
        buffer, path = self._map, self.path
        if L.INT64.unpack_from(buffer, L.MAGIC_OFFSET)[0] != _signed(L.MAGIC):
            # Says nothing of what the file holds instead: no error echoes a file's contents.
            raise RingError(f"{path}: not a ring file (it does not start with the ring magic)")
        for field, offset, expected in (("version", L.VERSION_OFFSET, L.VERSION),
                                        ("header size", L.HEADER_SIZE_OFFSET, L.HEADER_SIZE)):
            found = L.UINT32.unpack_from(buffer, offset)[0]
            if found != expected:
                raise RingError(f"{path}: not a ring file this side understands: {field} is {found}, "
                                f"expected {expected}")
        to_worker = L.UINT32.unpack_from(buffer, L.TO_WORKER_CAPACITY_OFFSET)[0]
        from_worker = L.UINT32.unpack_from(buffer, L.FROM_WORKER_CAPACITY_OFFSET)[0]
        _check_capacity("to-worker", to_worker)
        _check_capacity("from-worker", from_worker)
        if size != L.file_size(to_worker, from_worker):
            raise RingError(f"{path}: not a ring file this side understands: file size is {size}, expected "
                            f"{L.file_size(to_worker, from_worker)}")
        found = bytes(buffer[L.TOKEN_OFFSET:L.TOKEN_OFFSET + L.TOKEN_LENGTH])
        if not hmac.compare_digest(found, _token_bytes(token)):
            raise RingError(f"{path}: the session token does not match; refusing the ring")

    def word64(self, offset):
        """A view of the 64-bit word at ``offset``: one load or store per access. Valid while mapped."""
        return ctypes.c_int64.from_address(self.base + offset)

    def word32(self, offset):
        return ctypes.c_int32.from_address(self.base + offset)

    def consumer(self):
        """Reads the to-worker ring: the bridge's inputs."""
        return Consumer(self, L.TO_WORKER_CONTROL_OFFSET, L.HEADER_SIZE, self.to_worker_capacity,
                        f"{self.path} (to-worker ring)")

    def producer(self):
        """Writes the from-worker ring: the answers."""
        return Producer(self, L.FROM_WORKER_CONTROL_OFFSET, L.HEADER_SIZE + self.to_worker_capacity,
                        self.from_worker_capacity, f"{self.path} (from-worker ring)")

    def heartbeat(self):
        with self._lock:
            if not self._closed:
                self._heartbeat.value = now_millis()

    def _beat(self):
        while not self._closed:
            self.heartbeat()
            time.sleep(HEARTBEAT_SECONDS)

    def bridge_closed(self):
        return self._closed_flag.value != 0

    def bridge_lost(self, limit_millis):
        """Why the bridge counts as lost (it closed the ring, or its heartbeat is silent past the limit), or None.
        Process ids are never looked at: the bridge may live in another PID namespace."""
        if self.bridge_closed():
            return "the bridge closed the ring"
        silence = now_millis() - self._bridge_heartbeat.value
        if silence > limit_millis:
            return f"no heartbeat from the bridge for {silence} ms (the limit is {limit_millis} ms)"
        return None

    def close(self, stopped=False):
        """Tells the bridge this side left (the closed flag, and a wake of every sleeper), then unmaps. ``stopped``:
        the worker was asked to stop and answered every input it read (CLOSED_STOPPED), a planned stop."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._closed_flag.value = L.CLOSED_STOPPED if stopped else L.CLOSED_LEFT
            futex.fence()
            for control in (L.TO_WORKER_CONTROL_OFFSET, L.FROM_WORKER_CONTROL_OFFSET):
                for word, waiting in ((L.DATA_FUTEX, L.CONSUMER_WAITING), (L.SPACE_FUTEX, L.PRODUCER_WAITING)):
                    _Wake(self, control + word, control + waiting).if_waiting()
        self._beating.join()
        del self._anchor
        self._map.close()


def _signed(value):
    return struct.unpack("<q", struct.pack("<Q", value))[0]


class _Wake:
    """The peer's side of a wait on one futex word: bumps the word and wakes, only if the peer counts a
    sleeper. The caller has fenced since it published what the sleeper waits for."""

    def __init__(self, ring, futex_offset, waiting_offset):
        self.address = ring.base + futex_offset
        self.word = ring.word32(futex_offset)
        self.waiting = ring.word32(waiting_offset)

    def if_waiting(self):
        if self.waiting.value != 0:
            self.word.value = _signed32(self.word.value + 1)
            futex.wake_all(self.address)


def _signed32(value):
    return (value + 0x80000000) % 0x100000000 - 0x80000000


class _Wait:
    """This side's waits on one futex word: spins briefly, then counts itself as waiting and sleeps until
    ``ready()`` or about ``seconds``. No wake-up is lost: the count is fenced before ``ready`` is checked again,
    and the peer fences between publishing and reading the count. Only this side's one thread changes the
    count."""

    def __init__(self, ring, futex_offset, waiting_offset):
        self.address = ring.base + futex_offset
        self.word = ring.word32(futex_offset)
        self.waiting = ring.word32(waiting_offset)

    def until(self, ready, seconds):
        for _ in range(SPINS):
            if ready():
                return
        ticket = self.word.value
        self.waiting.value += 1
        futex.fence()
        try:
            if not ready():
                futex.wait(self.address, ticket, seconds)
        finally:
            self.waiting.value -= 1


_FRAME_TYPES = len(L.FRAME_NAMES)


def _check_positions(name, producer, consumer, capacity):
    if consumer % L.FRAME_ALIGNMENT:
        fault = f"consumer position {consumer} is not 8-byte aligned"
    elif producer % L.FRAME_ALIGNMENT:
        fault = f"producer position {producer} is not 8-byte aligned"
    elif producer < consumer:
        fault = f"producer position {producer} is behind consumer position {consumer}"
    elif producer - consumer > capacity:
        fault = f"producer position {producer} is more than the capacity ahead of the consumer"
    else:
        return
    raise RingError(f"{name}: corrupt positions: {fault} (producer at {producer}, consumer at {consumer}, "
                    f"capacity {capacity})")


class _RingEnd:
    """What either end of one ring holds: the mapped file, where the ring's data lies, its control block's two
    positions, and the futexes of frames published and of space released, one waited on and the other woken
    (``on_frames``, ``on_space``: ``_Wait`` or ``_Wake``)."""

    def __init__(self, ring, control, data, capacity, name, on_frames, on_space):
        self._frames = on_frames(ring, control + L.DATA_FUTEX, control + L.CONSUMER_WAITING)
        self._space = on_space(ring, control + L.SPACE_FUTEX, control + L.PRODUCER_WAITING)
        self._buffer = ring._map
        self._data = data
        self._capacity = capacity
        self._mask = capacity - 1
        self.max_frame = L.max_frame_length(capacity)
        self._producer = ring.word64(control + L.PRODUCER_POSITION)
        self._consumer = ring.word64(control + L.CONSUMER_POSITION)
        self._name = name


class Consumer(_RingEnd):
    """The reading side of the to-worker ring (single consumer). The consumer position is released once per
    ``poll``, not per frame."""

    def __init__(self, ring, control, data, capacity, name):
        super().__init__(ring, control, data, capacity, name, on_frames=_Wait, on_space=_Wake)
        self._head = self._consumer.value
        self._tail = self._head
        self._handling = -1

    def poll(self, handler, limit):
        """Hands up to ``limit`` published frames to ``handler(type, flags, sequence, buffer, offset, length)``
        in place; returns how many."""
        buffer = self._buffer
        if self._head == self._tail:
            # The head is checked with the tail: it started at the shared consumer position, which the peer may
            # have set to anything, and only moves by checked frames.
            tail = self._producer.value
            _check_positions(self._name, tail, self._head, self._capacity)
            self._tail = tail
            if self._head == tail:
                return 0
        frames = 0
        head, tail, mask, data, capacity, max_frame = (self._head, self._tail, self._mask, self._data,
                                                        self._capacity, self.max_frame)
        unpack_frame = L.FRAME.unpack_from
        try:
            while head < tail and frames < limit:
                index = head & mask
                at = data + index
                length, frame_type, flags, sequence = unpack_frame(buffer, at)
                aligned = (length + 7) & -8
                if frame_type == L.PADDING:
                    if length < L.FRAME_ALIGNMENT or aligned > capacity - index or head + aligned > tail:
                        raise self._corrupt(head, f"impossible length {length} for a PADDING frame", index)
                    head += aligned
                    continue
                if (length < L.FRAME_HEADER or length > max_frame or aligned > capacity - index
                        or head + aligned > tail or frame_type >= _FRAME_TYPES):
                    problem = (f"unknown frame type {frame_type}" if frame_type >= _FRAME_TYPES else
                               f"impossible length {length} for a {L.frame_name(frame_type)} frame")
                    raise self._corrupt(head, problem, index)
                self._handling = head
                head += aligned
                frames += 1
                handler(frame_type, flags, sequence, buffer, at + L.FRAME_HEADER, length - L.FRAME_HEADER)
        finally:
            self._head = head
            self._handling = -1
            self._publish(head)
        return frames

    def release_handled(self):
        """For a handler that must wait for room to answer: frees the frames handled before the current one,
        so the bridge can go on and drain the answers already written."""
        self._publish(self._handling if self._handling >= 0 else self._head)

    def _publish(self, position):
        self._consumer.value = position
        futex.fence()
        self._space.if_waiting()

    def _corrupt(self, position, what, index):
        return RingError(f"{self._name}: corrupt frame at position {position} (ring offset {index}): {what} "
                         f"(frames are {L.FRAME_HEADER} to {self.max_frame} bytes, 8-byte aligned)")

    def has_frames(self):
        return self._head != self._producer.value

    def await_frames(self, seconds):
        self._frames.until(self.has_frames, seconds)


class Producer(_RingEnd):
    """The writing side of the from-worker ring (single producer): frames are written in place and made
    visible by ``publish``, one store (and a wake only if the bridge sleeps) per batch."""

    def __init__(self, ring, control, data, capacity, name):
        super().__init__(ring, control, data, capacity, name, on_frames=_Wake, on_space=_Wait)
        self._tail = self._producer.value
        self._published = self._tail
        self._cached_head = self._consumer.value

    def try_write(self, frame_type, sequence, body, flags=0):
        """Writes one frame with ``body`` (bytes, may be empty); False when the ring has no room now."""
        body_length = len(body)
        if body_length > self.max_frame - L.FRAME_HEADER:
            raise RingError(f"{self._name}: a {L.frame_name(frame_type)} frame of {L.FRAME_HEADER + body_length} "
                            f"bytes does not fit: frames are at most {self.max_frame} bytes, half the ring's "
                            f"capacity of {self._capacity}; give the session larger rings")
        length = L.FRAME_HEADER + body_length
        aligned = (length + 7) & -8
        index = self._tail & self._mask
        to_end = self._capacity - index
        padding = to_end if aligned > to_end else 0
        needed = self._tail + padding + aligned
        if needed - self._cached_head > self._capacity:
            head = self._consumer.value
            _check_positions(self._name, self._published, head, self._capacity)
            self._cached_head = head
            if needed - head > self._capacity:
                return False
        buffer = self._buffer
        if padding:
            # The gap may be only 8 bytes: a PADDING frame is just its length, type and flags.
            struct.pack_into("<IHH", buffer, self._data + index, padding, L.PADDING, 0)
            self._tail += padding
            index = 0
        at = self._data + index
        L.FRAME.pack_into(buffer, at, length, frame_type, flags, sequence)
        if body_length:
            buffer[at + L.FRAME_HEADER:at + length] = body
        self._tail += aligned
        return True

    def publish(self):
        """Makes every written frame visible to the bridge, waking it if it sleeps."""
        if self._tail == self._published:
            return
        self._producer.value = self._tail
        self._published = self._tail
        futex.fence()
        self._frames.if_waiting()

    def await_space(self, seconds):
        """Publishes, then waits until the bridge has released room (or about ``seconds``)."""
        self.publish()
        head = self._cached_head
        consumer = self._consumer
        self._space.until(lambda: consumer.value != head, seconds)
        self._cached_head = consumer.value


def mark_closed(path):
    """For a supervisor whose session process died holding ``path``: sets the closed flag and wakes every
    sleeper, so the bridge ends the session now rather than when the dead side's heartbeat times out."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if os.fstat(fd).st_size < L.HEADER_SIZE:
            return
        mapped = mmap.mmap(fd, L.HEADER_SIZE)
    finally:
        os.close(fd)
    anchor = ctypes.c_char.from_buffer(mapped)
    base = ctypes.addressof(anchor)
    closed = ctypes.c_int32.from_address(base + L.CLOSED_OFFSET)
    # The dead process may have closed it already, as stopped: that says more, and stays.
    if closed.value == 0:
        closed.value = L.CLOSED_LEFT
    futex.fence()
    for control in (L.TO_WORKER_CONTROL_OFFSET, L.FROM_WORKER_CONTROL_OFFSET):
        for word in (L.DATA_FUTEX, L.SPACE_FUTEX):
            futex.wake_all(base + control + word)
    del anchor
    mapped.close()
