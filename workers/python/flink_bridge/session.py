"""One session's logic, fed strictly in order whatever the transport: every input gets its outputs and an
end of outputs, or an error, or (a record a dead-letter step failed on) an input failure. After an error the
session refuses further input, because the bridge fails the task and Flink restarts from the last checkpoint.

Inputs come from the data plane's thread and control calls (snapshot, restore, checkpoint notifications)
from another; the bridge asks for a snapshot only once every earlier input is answered, and the lock keeps
the two apart.
"""
import logging
import threading

from . import errors
from .sdk import stamp_clock
from .segments import KeyGroupInstances, StepFailed, TransportFailed

LOG = logging.getLogger("flink_bridge.session")


def describe(session_id, identity):
    """How errors and logs name a session: its id and the bridge function subtask that opened it."""
    return (f"session {session_id} (job '{identity.job_name}', operator '{identity.operator_name}', subtask "
            f"{identity.subtask_index}/{identity.parallelism})")


class Session:
    """Answers go to an ``answers`` object of the transport: ``output(message)`` for an output of the input
    in its ``sequence`` attribute (set here before the input is fed), or ``encode(message)`` and later
    ``output_encoded(encoded)``, ``end_of_outputs(sequence)``, ``error(sequence, text)`` and
    ``input_failed(sequence, step, error_class, message)``."""

    def __init__(self, name, described_steps, own=None, dead_letter=()):
        """``described_steps``: (name, type, config JSON) of each step; ``own``: what serves a step without a
        type (``WorkerSegments.own_for``); ``dead_letter``: the indexes of the steps whose on_error is
        dead_letter. A ValueError if any step cannot be built."""
        self.name = name
        self.dead_letter = frozenset(dead_letter)
        self.logic = KeyGroupInstances.of(described_steps, own)
        self.lock = threading.Lock()
        self.failure = None
        self.closed = False

    def record(self, sequence, key_group, message, answers):
        with self.lock:
            self._serve(sequence, answers, self.logic.for_key_group(key_group).process, message,
                        bool(self.dead_letter))

    def watermark(self, sequence, timestamp, answers):
        with self.lock:
            self._serve(sequence, answers, self.logic.on_watermark, timestamp)

    def clock(self, sequence, millis, answers):
        """Processing time advanced to ``millis``: what steps read from then on; answered with no output."""
        with self.lock:
            self._serve(sequence, answers, _stamp, millis)

    def barrier(self, sequence, answers):
        """A flush marker: answered once every earlier input is, which it is by the time it is served."""
        with self.lock:
            self._serve(sequence, answers, _nothing, None)

    def _serve(self, sequence, answers, apply, argument, hold=False):
        """``apply(argument, emit)``, its outputs answering input ``sequence``. ``hold``: a record of a segment
        with dead-letter steps, whose outputs wait until it is done, since none may go out if such a step fails
        it; they are encoded as emitted, so that an output that cannot be is its step's failure."""
        if self.failure is not None or self.closed:
            answers.error(sequence, "session closed" if self.closed else f"session already failed: {self.failure}")
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
        if held:
            for output in held:
                answers.output_encoded(output)
        answers.end_of_outputs(sequence)

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


def _nothing(argument, emit):
    pass


def _stamp(millis, emit):
    stamp_clock(millis)
