"""The secret that authenticates every call to the worker (docs/protocol.md, "Authentication"): the
environment variable FLINK_BRIDGE_SECRET when set, else the file control.secret in the ring directory the
bridge and the worker share (mode 0700), created with mode 0600 by whichever side comes first. A call without
it is refused before any service sees it, with nothing else said."""
import hmac
import os
import secrets
import stat
import tempfile

import grpc

from .ring_folder import ensure_private

ENV = "FLINK_BRIDGE_SECRET"
FILE_NAME = "control.secret"
METADATA = "flink-bridge-secret"
MIN_LENGTH = 16


def for_directory(directory):
    """The secret of the workers whose ring directory is ``directory``; OSError naming the file's problem."""
    from_environment = os.environ.get(ENV)
    if from_environment is not None:
        return _checked(from_environment.strip(), ENV)
    return from_file(os.path.join(directory, FILE_NAME))


def from_file(path):
    """The secret in ``path``, created (mode 0600) if absent, once its folder is a private ring folder (created if
    missing)."""
    ensure_private(os.path.dirname(os.path.abspath(path)))
    if not os.path.lexists(path):
        _create(path)
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        raise OSError(f"control secret {path} is not a regular file")
    if info.st_uid != os.geteuid():
        raise OSError(f"control secret {path} does not belong to this user")
    if stat.S_IMODE(info.st_mode) != 0o600:
        raise OSError(f"control secret {path} has mode {stat.filemode(info.st_mode)[1:]}; it must be rw------- so "
                      "no other user can read it")
    with open(path, encoding="ascii") as file:
        return _checked(file.read().strip(), path)


def _create(path):
    """Writes a new secret beside ``path`` and links it into place: a reader never sees it half written, and a
    secret another process linked first holds."""
    fd, written = tempfile.mkstemp(prefix=".control-", suffix=".secret", dir=os.path.dirname(path))
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.close(fd)
        try:
            os.link(written, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(written)


def _checked(value, source):
    if len(value) < MIN_LENGTH or not value.isascii() or any(c <= " " for c in value):
        raise OSError(f"the control secret from {source} must be at least {MIN_LENGTH} printable ASCII characters")
    return value


class Authenticator(grpc.ServerInterceptor):
    """Refuses a call that does not carry the secret, before any service sees it."""

    def __init__(self, secret):
        self.expected = secret.encode("ascii")

    def intercept_service(self, continuation, details):
        presented = dict(details.invocation_metadata or ()).get(METADATA, "")
        if hmac.compare_digest(presented.encode("ascii", "replace"), self.expected):
            return continuation(details)
        handler = continuation(details)
        if handler is None:
            return _refuse(grpc.unary_unary_rpc_method_handler)
        if handler.request_streaming and handler.response_streaming:
            return _refuse(grpc.stream_stream_rpc_method_handler)
        if handler.request_streaming:
            return _refuse(grpc.stream_unary_rpc_method_handler)
        if handler.response_streaming:
            return _refuse(grpc.unary_stream_rpc_method_handler)
        return _refuse(grpc.unary_unary_rpc_method_handler)


def _refuse(kind):
    def refuse(request, context):
        # Says nothing else: no worker id, no method list, nothing a caller without the secret may learn.
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "the call does not carry this worker's control secret")
    return kind(refuse)
