"""The private channel between the supervisor and one session process: a socket pair carrying pickled
requests and replies, one at a time. Both ends are this runtime's own processes; nothing from the bridge
is unpickled here without having been parsed as a protocol message first."""
import socket
from multiprocessing.connection import Connection


class SessionGone(Exception):
    """The session process has ended: the channel closed under a request."""


def pair():
    """(supervisor end, session process end) of a new channel; the latter's file descriptor is inherited."""
    ours, theirs = socket.socketpair()
    theirs.set_inheritable(True)
    return Connection(ours.detach()), theirs


def attach(fd):
    return Connection(fd)


def ask(connection, request, timeout):
    """Sends one request and waits up to ``timeout`` seconds for its reply: ("ok", value) or ("error", grpc
    code name, text). SessionGone when the process has ended or does not answer in time."""
    try:
        connection.send(request)
        if not connection.poll(timeout):
            raise SessionGone(f"it did not answer {request[0]} within {timeout:g} s")
        return connection.recv()
    except (EOFError, OSError) as e:
        raise SessionGone(str(e) or type(e).__name__) from e
