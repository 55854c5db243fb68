"""One session's logic, fed strictly in order whatever the transport: every input gets its outputs and an
end of outputs, or an error, or (a record a dead-letter step failed on) an input failure. After an error the
session refuses further input, because the bridge fails the task and Flink restarts from the last checkpoint.

Inputs come from the data plane's thread and control calls (snapshot, restore, checkpoint notifications)
from another; the bridge asks for a snapshot only once every earlier input is answered, and the lock keeps
the two apart.
"""
import logging
import threading

from google.protobuf.message import DecodeError

from . import errors
from ._proto import data as data_pb2
from .cells import CellStore, CellsNotKeyed, key_text
from .sdk import stamp_clock
from .segments import KeyGroupInstances, StepFailed, TransportFailed
from .timers import TimerStore, TimersNotKeyed, TimeDomain

LOG = logging.getLogger("flink_bridge.session")


def describe(session_id, identity):
    """How errors and logs name a session: its id and the bridge function subtask that opened it."""
    return (f"session {session_id} (job '{identity.job_name}', operator '{identity.operator_name}', subtask "
            f"{identity.subtask_index}/{identity.parallelism})")


class Session:
    """Answers go to an ``answers`` object of the transport: ``output(message)`` for an output of the input
    in its ``sequence`` attribute (set here before the input is fed), or ``encode(message)`` and later
    ``output_encoded(encoded)``, ``end_of_outputs(sequence)``, ``error(sequence, text)`` and
    ``input_failed(sequence, step, error_class, message)``; a barrier's cell writes go to ``cell_writes(key_cells)``
    (a KeyCells message with its ``resident_bytes``), each at most ``cell_frame_bytes`` long where it can be; an input's
    timer changes to ``timers(timer_changes)`` (a TimerChanges message, at most ``timer_frame_bytes`` long), before
    its end of outputs."""

    def __init__(self, name, described_steps, own=None, dead_letter=(), keyed=False):
        """``described_steps``: (name, type, config JSON) of each step; ``own``: what serves a step without a
        type (``WorkerSegments.own_for``); ``dead_letter``: the indexes of the steps whose on_error is
        dead_letter; ``keyed``: every record comes with its key (``OpenSessionRequest.keyed``). A ValueError if any
        step cannot be built; ``CellsNotKeyed`` or ``TimersNotKeyed`` (ValueErrors) if the session is not keyed and a
        step declares cells or timers."""
        self.name = name
        self.dead_letter = frozenset(dead_letter)
        self.keyed = keyed
        self.cells = CellStore()
        self.timers = TimerStore()
        # The built-in steps are told whether the session is keyed: running_count, batch and count keep their state in
        # cells if so.
        self.logic = KeyGroupInstances.of(described_steps, own, self.cells, keyed, self.timers)
        self.step_count = len(described_steps)
        if self.cells.specs and not keyed:
            spec = self.cells.specs[0]
            self.logic.close()
            raise CellsNotKeyed(f"step '{spec.step}' declares cell '{spec.name}', but the session is not keyed: cells "
                                "live under the record's key: key the segment with bridge.key")
        if self.timers.declared and not keyed:
            step = next(iter(self.timers.steps.values()))
            self.logic.close()
            raise TimersNotKeyed(f"step '{step}' sets timers, but the session is not keyed: a timer belongs to the "
                                 "key of the input that sets it: key the segment with bridge.key")
        self.lock = threading.Lock()
        self.failure = None
        # A failure found where no answer could carry it (a LOAD), answered on the next input: (sequence, text).
        self.unanswered = None
        self.closed = False

    @property
    def declared_cells(self):
        """The cells the steps declared, in the order of their ids: ``cells.CellSpec`` each."""
        return list(self.cells.specs)

    @property
    def declared_timers(self):
        """Whether the steps may set timers (``OpenSessionResponse.timers``)."""
        return self.timers.declared

    def record(self, sequence, key_group, message, answers, key=None):
        """A record; ``key``: its key (bytes), in a keyed session."""
        with self.lock:
            if not self.keyed:
                self._serve(sequence, answers, self.logic.for_key_group(key_group).process, message,
                            bool(self.dead_letter))
                return
            if self.failure is None and not self.closed and self.unanswered is None:
                if not self._enter(sequence, answers, key, "record"):
                    return
            timers = self.timers
            timers.begin()
            try:
                self._serve(sequence, answers, self.logic.for_key_group(key_group).process, message,
                            bool(self.dead_letter))
            finally:
                timers.end()
                self.cells.leave()

    def _enter(self, sequence, answers, key, kind):
        """The keyed input ``sequence`` (a ``kind``: record or timer) has ``key``: its cells become the steps'. False
        once it is answered with an error: LOADs of another input came before it, or its key is not resident."""
        cells = self.cells
        if cells.loading not in (None, sequence):
            self._failed(sequence, answers, self._loads_unanswered(sequence), "")
            return False
        if not cells.enter(key):
            self._failed(sequence, answers, f"protocol violation: the key {key_text(key)} of {kind} input "
                                            f"#{sequence} is not resident: no LOAD for it came in this session", "")
            return False
        return True

    def timer(self, sequence, key_group, key, firing, answers):
        """A TIMER: a timer of ``key`` fires (``firing``, a TimerFiring message or its encoding), for the instance of
        ``key_group``. The step that set it runs its ``on_timer`` with the key's cells and timers, and the steps after
        it take what it emits; answered as a record is, but a failure anywhere is the session's (a firing is no record
        to send aside)."""
        with self.lock:
            if self.failure is not None or self.closed or self.unanswered is not None:
                # Answered with the error that stands.
                self._serve(sequence, answers, None, None)
                return
            try:
                fired = self._firing(sequence, firing)
            except ValueError as e:
                self._failed(sequence, answers, f"protocol violation: {e}", "")
                return
            if not self._enter(sequence, answers, key, "timer"):
                return
            timers = self.timers
            timers.begin()
            try:
                self._serve(sequence, answers, self.logic.for_key_group(key_group).on_timer, fired)
            finally:
                timers.end()
                self.cells.leave()

    def _firing(self, sequence, firing):
        """(step index, timestamp, domain) of a TIMER's firing; a ValueError saying what is wrong with it."""
        if not self.timers.declared:
            raise ValueError(f"a TIMER came (input #{sequence}), but the session's steps declared no timers")
        if isinstance(firing, (bytes, bytearray, memoryview)):
            try:
                firing = data_pb2.TimerFiring.FromString(bytes(firing))
            except DecodeError as e:
                raise ValueError(f"the TIMER of input #{sequence} carries no TimerFiring message: {e}") from None
        step = firing.step
        if step >= self.step_count:
            raise ValueError(f"the TIMER of input #{sequence} names step {step}, but the segment has "
                             f"{self.step_count} step(s)")
        if step not in self.timers.steps:
            raise ValueError(f"the TIMER of input #{sequence} names step {step}, which declared no timers (those "
                             f"that did: {', '.join(map(str, sorted(self.timers.steps)))})")
        try:
            domain = TimeDomain(firing.domain)
        except ValueError:
            raise ValueError(f"the TIMER of input #{sequence} has no time domain ("
                             f"{_domain_name(firing.domain)}): EVENT_TIME or PROCESSING_TIME") from None
        return step, firing.timestamp, domain

    def load(self, sequence, key_cells):
        """A LOAD, part of record input ``sequence`` (which comes next): ``key_cells``, a KeyCells message or its
        encoding. It is answered with that record; what is wrong with it fails the session there."""
        with self.lock:
            if self.failure is not None or self.closed:
                return
            try:
                if not self.keyed:
                    raise ValueError("a LOAD came in a session that is not keyed")
                if isinstance(key_cells, (bytes, bytearray, memoryview)):
                    key_cells = data_pb2.KeyCells.FromString(bytes(key_cells))
                if self.cells.loading not in (None, sequence):
                    raise ValueError(self._loads_unanswered(sequence))
                self.cells.load(sequence, key_cells)
            except (ValueError, DecodeError) as e:
                summary = f"protocol violation: {e}" if isinstance(e, ValueError) else \
                    f"protocol violation: the LOAD of input #{sequence} is no KeyCells message: {e}"
                self.failure = summary
                self.unanswered = (sequence, summary)

    def _loads_unanswered(self, sequence):
        return (f"LOAD frames of record input #{self.cells.loading} came, then input #{sequence} instead of that "
                "record")

    def watermark(self, sequence, timestamp, answers):
        with self.lock:
            self._serve(sequence, answers, self.logic.on_watermark, timestamp)

    def clock(self, sequence, millis, answers):
        """Processing time advanced to ``millis``: what steps read from then on; answered with no output."""
        with self.lock:
            self._serve(sequence, answers, _stamp, millis)

    def barrier(self, sequence, answers, evict=()):
        """A flush marker: answered, once every earlier input is (which it is by the time it is served), with the
        cells changed since the last barrier, then its end marker; then the cells of the keys in ``evict`` (bytes
        each) are dropped, and a record of such a key needs a LOAD again."""
        with self.lock:
            self._serve(sequence, answers, self._write_cells, answers)
            if evict:
                self.cells.evict(evict)

    def _write_cells(self, answers, emit):
        cells = self.cells
        drained = cells.drain()
        if drained:
            budget = answers.cell_frame_bytes
            for key, writes in drained:
                for frame in key_cells_frames(key, writes, budget, cells.resident_bytes(key)):
                    answers.cell_writes(frame)

    def _serve(self, sequence, answers, apply, argument, hold=False):
        """``apply(argument, emit)``, its outputs answering input ``sequence``. ``hold``: a record of a segment
        with dead-letter steps, whose outputs wait until it is done, since none may go out if such a step fails
        it; they are encoded as emitted, so that an output that cannot be is its step's failure. What the record's
        steps changed in its key's cells before such a failure stays, as whole-instance state does, and is written
        back at the next barrier (docs/protocol.md, "Cells")."""
        if self.unanswered is not None:
            loaded, summary = self.unanswered
            self.unanswered = None
            self._failed(sequence, answers, summary if loaded == sequence else
                         f"{summary} (a LOAD of input #{loaded}, answered with input #{sequence})", "")
            return
        if self.failure is not None or self.closed:
            answers.error(sequence, "session closed" if self.closed else f"session already failed: {self.failure}")
            return
        if self.cells.loading is not None:
            self._failed(sequence, answers, self._loads_unanswered(sequence), "")
            return
        answers.sequence = sequence
        held = [] if hold else None
        try:
            if held is None:
                apply(argument, answers.output)
            else:
                encode = answers.encode
                apply(argument, lambda message: held.append(encode(message)))
        except TransportFailed:
            raise
        except StepFailed as e:
            if held is not None and e.index in self.dead_letter:
                # The answer carries the error; a text too long for it is cut there, so the log keeps it whole.
                level = logging.WARNING if errors.encoded_length(e.message) > errors.MAX_BYTES else logging.DEBUG
                LOG.log(level, "input #%d goes to the dead letters: %s: %s\n%s", sequence, self.name, e, e.details)
                answers.input_failed(sequence, e.step_name, e.error_class, e.message)
            else:
                self._failed(sequence, answers, str(e), e.details)
            return
        except Exception as e:
            self._failed(sequence, answers, f"{type(e).__name__}: {e}", "")
            return
        changes = self._timer_changes(sequence, answers) if self.timers.changes else None
        if changes is False:
            return
        if held:
            for output in held:
                answers.output_encoded(output)
        if changes is not None:
            answers.timers(changes)
        answers.end_of_outputs(sequence)

    def _timer_changes(self, sequence, answers):
        """The input's timer changes as one TimerChanges message; False once the input is answered with an error
        because they do not fit one frame."""
        message = data_pb2.TimerChanges(changes=[
            data_pb2.TimerChange(op=op, step=step, domain=domain, timestamp=timestamp)
            for op, step, domain, timestamp in self.timers.changes])
        size = message.ByteSize()
        if size > answers.timer_frame_bytes:
            self._failed(sequence, answers, f"the steps made {len(self.timers.changes)} timer change(s) in input "
                                            f"#{sequence}, {size} bytes, more than the {answers.timer_frame_bytes} a "
                                            "frame of this session holds: give the session larger rings, or set "
                                            "fewer timers per input", "")
            return False
        return message

    def _failed(self, sequence, answers, summary, details):
        """The input failed, and with it the session: its whole text is logged here, once; the data plane cuts the
        ERROR it answers with to what the bridge takes."""
        self.failure = summary
        text = f"{self.name}: {summary}" + (f"\n{details}" if details else "")
        LOG.warning("input #%d failed: %s", sequence, text)
        answers.error(sequence, text)

    def snapshot(self):
        with self.lock:
            return self.logic.snapshot()

    def restore(self, states):
        with self.lock:
            self.logic.restore(states)

    def checkpoint_finished(self, checkpoint_id, completed):
        with self.lock:
            self.logic.checkpoint_finished(checkpoint_id, completed)

    def close(self):
        with self.lock:
            if not self.closed:
                self.closed = True
                self.logic.close()


def key_cells_frames(key, writes, budget, resident_bytes):
    """``writes`` of ``key`` (``CellStore.drain``'s tuples) as KeyCells messages in order, each at most ``budget``
    bytes unless one write alone is more (``CellStore.max_write_bytes`` keeps such a write from being made); each
    carries ``resident_bytes``, what the key's cells take once they are all applied."""
    frame = data_pb2.KeyCells(key=key, resident_bytes=resident_bytes)
    empty = size = frame.ByteSize()
    for cell, op, value, entry_key in writes:
        write = data_pb2.CellWrite(cell=cell, op=op, value=value, entry_key=entry_key)
        length = write.ByteSize()
        length += 1 + _varint_length(length)
        if size > empty and size + length > budget:
            yield frame
            frame = data_pb2.KeyCells(key=key, resident_bytes=resident_bytes)
            size = empty
        frame.writes.append(write)
        size += length
    if size > empty:
        yield frame


def _varint_length(value):
    length = 1
    while value >= 0x80:
        value >>= 7
        length += 1
    return length


def _domain_name(domain):
    try:
        return data_pb2.TimeDomain.Name(domain)
    except ValueError:
        return f"unknown domain {domain}"


def _stamp(millis, emit):
    stamp_clock(millis)
