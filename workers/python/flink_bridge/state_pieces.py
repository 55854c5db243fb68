"""Worker state on the control plane travels in pieces (``KeyGroupState`` with ``continued``), packed into
messages of at most ``MESSAGE_BYTES`` of state, so that no state is too large for one gRPC message
(docs/protocol.md, "Control RPCs")."""
from ._proto import control as control_pb2
from .segments import UNKEYED

MESSAGE_BYTES = 4 << 20


def messages(states):
    """The state lists of a SnapshotState stream, one per message, built as they are sent: ``states`` maps
    each key group (``UNKEYED`` for a stream that is not keyed) to its state."""
    message, size = [], 0
    for key_group, state in states.items():
        view = memoryview(state)
        offset = 0
        while True:
            room = MESSAGE_BYTES - size
            end = min(len(view), offset + room)
            piece = control_pb2.KeyGroupState(state=bytes(view[offset:end]), continued=end < len(view))
            if key_group != UNKEYED:
                piece.key_group = key_group
            message.append(piece)
            size += end - offset
            offset = end
            if size >= MESSAGE_BYTES:
                yield message
                message, size = [], 0
            if offset >= len(view):
                break
    if message:
        yield message


class Assembler:
    """Joins the pieces of a RestoreState stream back into each key group's state; raises ``ValueError`` for
    pieces that do not make whole states."""

    def __init__(self):
        self.states = {}
        self._open_key_group = None
        self._open = []

    def add(self, piece):
        key_group = piece.key_group if piece.HasField("key_group") else UNKEYED
        if self._open_key_group is not None and self._open_key_group != key_group:
            raise self._incomplete()
        if self._open_key_group is None and key_group in self.states:
            raise ValueError(f"key group {key_group} given twice")
        self._open.append(piece.state)
        if piece.continued:
            self._open_key_group = key_group
        else:
            self.states[key_group] = b"".join(self._open)
            self._open_key_group, self._open = None, []

    def finish(self):
        if self._open_key_group is not None:
            raise self._incomplete()
        return self.states

    def _incomplete(self):
        return ValueError(f"the state of key group {self._open_key_group} ends without its last piece")
