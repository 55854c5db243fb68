"""Serves one shm session: reads the to-worker ring in order, feeds the session, and writes each input's
outputs and end marker (or error, or input failure, or a barrier's cell writes before its end marker, or a record's or
firing's timer changes before its end marker) into the from-worker ring, published once per polled batch.
When the bridge sends nothing it sleeps on the ring's futex, waking every 100 ms to check that the bridge is still
there.
"""
import logging
import os
import struct

from . import codec, errors
from . import layout as L
from .ring import RingError
from .segments import UNKEYED

_unpack_key_length = L.UINT32.unpack_from
# An evicted key's length in a BARRIER body: an i32, so a negative one is named as such.
_unpack_evicted_length = struct.Struct("<i").unpack_from

LOG = logging.getLogger("flink_bridge.shm")

# Frames taken per poll: answers are published after each batch, so the first answers of a long queue do
# not wait for all of it.
BATCH_FRAMES = 32
IDLE_WAIT_SECONDS = 0.1
_unpack_long = L.INT64.unpack_from


class ShmLoop:

    def __init__(self, session, ring, liveness_timeout_ms):
        self.session = session
        self.ring = ring
        self.inputs = ring.consumer()
        self.answers = ring.producer()
        self.liveness_timeout_ms = liveness_timeout_ms
        self.stopping = False
        # The worker is asked to stop: answer what was read, then close the ring as stopped.
        self.stop_asked = False
        # The input whose outputs are being written (the session sets it before feeding the input).
        self.sequence = -1
        # In a keyed session a RECORD's body starts with its key.
        self.keyed = session.keyed
        # A barrier's cell writes: each KeyCells at most one frame; a write too large for one frame, or for a frame
        # of the LOADs that bring it back, fails the step that makes it.
        self.cell_frame_bytes = self.answers.max_frame - L.FRAME_HEADER
        # An input's timer changes: one frame.
        self.timer_frame_bytes = self.answers.max_frame - L.FRAME_HEADER
        session.cells.max_write_bytes = min(self.inputs.max_frame, self.answers.max_frame) - L.FRAME_HEADER

    def run(self):
        """Serves until the bridge closes the ring or is lost, the session is closed, or the ring is corrupt;
        then closes the ring (removing the file of a bridge that crashed)."""
        handle = self._on_frame
        try:
            while not self.stopping and not self.stop_asked:
                if self.inputs.poll(handle, BATCH_FRAMES):
                    self.answers.publish()
                    continue
                self.inputs.await_frames(IDLE_WAIT_SECONDS)
                lost = None if self.inputs.has_frames() else self.ring.bridge_lost(self.liveness_timeout_ms)
                if lost is not None:
                    LOG.info("%s: ending: %s", self.session.name, lost)
                    break
        except Exception:
            LOG.exception("%s: the ring failed; ending the session", self.session.name)
        finally:
            # Silent without closing the ring: the bridge crashed and will not remove its file.
            abandoned = (not self.stopping and not self.ring.bridge_closed()
                         and self.ring.bridge_lost(self.liveness_timeout_ms) is not None)
            stopped = self.stop_asked and not self.stopping
            if stopped:
                LOG.info("%s: stopped as asked, every input it read answered", self.session.name)
            self.ring.close(stopped=stopped)
            if abandoned:
                try:
                    os.unlink(self.ring.path)
                    LOG.info("%s: removed the ring file %s its lost bridge left", self.session.name, self.ring.path)
                except FileNotFoundError:
                    pass

    def _on_frame(self, frame_type, flags, sequence, buffer, offset, length):
        if frame_type == L.RECORD:
            if self.keyed:
                key, offset, length = _key(buffer, offset, length)
                message = codec.decode(buffer, offset, length)
                self.session.record(sequence, UNKEYED if flags == L.NO_KEY_GROUP else flags, message, self, key)
                return
            message = codec.decode(buffer, offset, length)
            self.session.record(sequence, UNKEYED if flags == L.NO_KEY_GROUP else flags, message, self)
        elif frame_type == L.TIMER:
            # The key as a keyed RECORD carries it, then the TimerFiring; the flags carry the key's group as a RECORD's.
            key, offset, length = _key(buffer, offset, length, "TIMER")
            self.session.timer(sequence, UNKEYED if flags == L.NO_KEY_GROUP else flags, key,
                               bytes(buffer[offset:offset + length]), self)
        elif frame_type == L.LOAD:
            self.session.load(sequence, buffer[offset:offset + length])
        elif frame_type == L.WATERMARK:
            self.session.watermark(sequence, self._long_body(frame_type, sequence, buffer, offset, length), self)
        elif frame_type == L.BARRIER:
            self.session.barrier(sequence, self, self._evicted(sequence, buffer, offset, length))
        elif frame_type == L.CLOCK:
            self.session.clock(sequence, self._long_body(frame_type, sequence, buffer, offset, length), self)
        else:
            raise RingError(f"{self.session.name}: the bridge sent a {L.frame_name(frame_type)} frame "
                            f"(input #{sequence}), which a bridge never sends")

    def _long_body(self, frame_type, sequence, buffer, offset, length):
        """The i64 a WATERMARK or CLOCK frame carries, once its length is known to hold one."""
        if length < 8:
            raise RingError(f"{self.session.name}: a {L.frame_name(frame_type)} frame of {length} body bytes "
                            f"(input #{sequence})")
        return _unpack_long(buffer, offset)[0]

    def _evicted(self, sequence, buffer, offset, length):
        """The keys a BARRIER's body names to evict after its i64 checkpoint id: (i32 key length, key) each, until
        the body ends. A body too short for the id, or a length running past the body, is a corrupt frame."""
        if length < 8:
            raise RingError(f"{self.session.name}: a BARRIER frame of {length} body bytes (input #{sequence})")
        keys = []
        at, end = offset + 8, offset + length
        while at < end:
            if end - at < 4:
                raise RingError(f"{self.session.name}: corrupt BARRIER frame (input #{sequence}): {end - at} "
                                "byte(s) after its last evicted key, too few for a key length")
            (key_length,) = _unpack_evicted_length(buffer, at)
            at += 4
            if not 0 <= key_length <= end - at:
                raise RingError(f"{self.session.name}: corrupt BARRIER frame (input #{sequence}): an evicted key of "
                                f"{key_length} bytes runs past the body ({end - at} byte(s) left of {length})")
            keys.append(bytes(buffer[at:at + key_length]))
            at += key_length
        return keys

    # The session's answers, written straight into the from-worker ring.

    def output(self, message):
        """One output of input ``self.sequence``."""
        body = codec.encode(message)
        if not self.answers.try_write(L.OUTPUT, self.sequence, body):
            self._write(L.OUTPUT, self.sequence, body)

    # A held output: its record body, written once its input is done.
    encode = staticmethod(codec.encode)

    def output_encoded(self, body):
        self._write(L.OUTPUT, self.sequence, body)

    def end_of_outputs(self, sequence):
        if not self.answers.try_write(L.END_OF_OUTPUTS, sequence, b""):
            self._write(L.END_OF_OUTPUTS, sequence, b"")

    def error(self, sequence, text):
        """The text, cut to what the bridge takes and one frame holds (docs/protocol.md, "Error texts"); the session
        logged it whole."""
        body = errors.cut(text, min(errors.MAX_BYTES, self.answers.max_frame - L.FRAME_HEADER))
        self._write(L.ERROR, sequence, body.encode("utf-8", "replace"))

    def input_failed(self, sequence, step, error_class, message):
        """The message cut as an error's text is, to what is left of a frame beside the step and the class."""
        room = self.answers.max_frame - L.FRAME_HEADER - len(codec.encode_failure(step, error_class, ""))
        self._write(L.INPUT_FAILED, sequence,
                    codec.encode_failure(step, error_class, errors.cut(message, min(errors.MAX_BYTES, room))))

    def cell_writes(self, key_cells):
        """One key's cell writes (a KeyCells message), part of the answer to barrier ``self.sequence``."""
        self._write(L.CELL_WRITES, self.sequence, key_cells.SerializeToString())

    def timers(self, timer_changes):
        """The timer changes (a TimerChanges message) of input ``self.sequence``, before its end marker."""
        self._write(L.TIMERS, self.sequence, timer_changes.SerializeToString())

    def _write(self, frame_type, sequence, body):
        """Writes one answer, waiting while the ring is full."""
        while not self.answers.try_write(frame_type, sequence, body):
            # The bridge may itself wait for room for inputs: free what is handled and let it drain answers.
            self.inputs.release_handled()
            self.answers.await_space(IDLE_WAIT_SECONDS)
            lost = self.ring.bridge_lost(self.liveness_timeout_ms)
            if lost is not None or self.stopping:
                raise RingError(f"{self.session.name}: cannot answer input #{sequence}: "
                                f"{lost or 'the session is closing'}")


def _key(buffer, offset, length, frame="RECORD"):
    """The key that leads a keyed RECORD's body (an i32 length, then the key), or a TIMER's, and where the rest of the
    body after it lies: (key, offset, length)."""
    if length < 4:
        raise codec.CorruptRecord(f"corrupt record: a keyed {frame} body of {length} bytes has no key length")
    (key_length,) = _unpack_key_length(buffer, offset)
    if key_length > length - 4:
        raise codec.CorruptRecord(f"corrupt record: a key of {key_length} bytes in a keyed {frame} body of "
                                  f"{length} bytes")
    start = offset + 4
    return bytes(buffer[start:start + key_length]), start + key_length, length - 4 - key_length
