"""Runs a step as a worker session runs it, for tests without Flink or a worker (docs/python-worker.md).

``StepHarness`` builds the step with the worker's own code (``segments``): a built-in step by name, a segment
written for the prototype by ``module.Class`` or by the class itself, its config passed as the JSON a session
gets. It keeps one instance per key group, sends watermarks to every instance in key group order, and gives
checkpoints as the session's SnapshotState does. ``current_time_millis()`` reads only what
``set_processing_time`` stamped (a CLOCK input), and until then this process's clock.
"""
import json

from . import sdk
from .segments import MAX_WATERMARK, UNKEYED, KeyGroupInstances, StepFailed


class StepHarness:
    """Each input returns its outputs (a list of messages). An input that raises fails with the step's own
    exception and, as in a session, every later input is refused."""

    def __init__(self, step, config=None, name=None):
        """``step``: a built-in step's name, ``"module.Class"``, or a segment class; ``config``: the step's
        config, a dict (or its JSON text); ``name``: its ``step_name`` (default: the type). A ValueError when the
        step cannot be built, as a session is refused."""
        config_json = config if isinstance(config, str) else "" if config is None else json.dumps(config)
        if isinstance(step, type):
            # A class is served as the worker's own segments are (--segments): by the class, not its name.
            label = f"{step.__module__}.{step.__qualname__}"
            described, own = (name or label, "", config_json), (label, step)
        else:
            described, own = (name or step, step, config_json), None
        # A session process has a clock of its own: each harness keeps its own, stamped around each call.
        self._clock = None
        self._failure = None
        self._closed = False
        self._instances = self._on_own_clock(KeyGroupInstances.of, [described], own)

    def restore(self, states):
        """Hands each key group its state (what ``checkpoint`` gave), as RestoreState does: before any input."""
        self._on_own_clock(self._instances.restore, states)

    def process(self, message, key_group=UNKEYED):
        """A record, to the instance of its Flink key group (0 to 32767; UNKEYED: a stream that is not keyed)."""
        return self._serve(lambda emit: self._instances.for_key_group(key_group).process(message, emit))

    def watermark(self, timestamp):
        """A watermark, to every instance in key group order: the outputs of all."""
        return self._serve(lambda emit: self._instances.on_watermark(timestamp, emit))

    def end_input(self):
        """The end of input (a watermark of the largest long): whatever the steps still held."""
        return self.watermark(MAX_WATERMARK)

    def set_processing_time(self, millis):
        """Processing time is ``millis`` from now on, as a CLOCK input stamps it."""
        self._clock = millis

    def checkpoint(self):
        """Each instance's state by key group (UNKEYED: not keyed), empty ones left out."""
        return self._on_own_clock(self._instances.snapshot)

    def close(self):
        self._closed = True
        self._on_own_clock(self._instances.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _serve(self, apply):
        if self._failure is not None or self._closed:
            raise RuntimeError("harness closed" if self._closed else f"the step already failed: {self._failure}")
        outputs = []
        try:
            self._on_own_clock(apply, outputs.append)
            return outputs
        except StepFailed as e:
            self._failure = str(e)
            error = e.__cause__
        except Exception as e:
            self._failure = f"{type(e).__name__}: {e}"
            raise
        # Raised here, not in the handler, so the step's exception keeps its own context.
        raise error

    def _on_own_clock(self, call, *args):
        outer = sdk._stamped_millis
        sdk.stamp_clock(self._clock)
        try:
            return call(*args)
        finally:
            sdk.stamp_clock(outer)
