"""The Python worker's entry point: ``python3 workers/python/ [--port N | --unix-socket | --unix-socket-path PATH] [--host H] [--ring-dir DIR]
[--path DIR]... [--parent-pid PID]``. Serves the control service on loopback (or a Unix domain socket in the ring
directory), prints the listening line the launch contract
asks for (docs/protocol.md, "Launch and lifetime"), and starts one process per session.
"""
import argparse
import getpass
import glob
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from concurrent import futures

import grpc

from .compat import CompatService, parse_segments
from .control import Supervisor
from .ring_folder import ensure_private
from .secret import Authenticator, for_directory
from .segments import PICKLED_STATE_ENV, WorkerSegments

LOG = logging.getLogger("flink_bridge")
LISTENING_PREFIX = "flink-bridge worker listening on "
PARENT_CHECK_SECONDS = 0.2
# Server threads kept for control calls (Health, OpenSession, SnapshotState, ...) beside the long-lived streams.
CONTROL_THREADS = 8
# Exit code of a worker whose spawner is gone.
ORPHANED = 3


def default_ring_directory():
    base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else "/tmp"
    return os.path.join(base, f"flink-bridge-{getpass.getuser()}")


def unix_socket(ring_directory):
    """The socket this worker listens on in its ring directory (private, 0700), named by its pid. Sockets of
    workers that are gone (killed, so they could not remove theirs) are removed first: nothing accepts on them."""
    directory = os.path.abspath(ring_directory)
    for stale in glob.glob(os.path.join(directory, "worker-*.sock")):
        if not _accepts(stale):
            _unlink(stale)
    path = os.path.join(directory, f"worker-{os.getpid()}.sock")
    _unlink(path)
    return path


def claim_socket(path):
    """``path``, a fixed socket a sidecar worker is told to listen on, made free: a socket file there that nothing
    accepts on (its worker was killed) is removed; one that accepts is an error, as two workers must not share an
    address."""
    path = os.path.abspath(path)
    if _accepts(path):
        sys.exit(f"flink-bridge worker: cannot listen on unix:{path}: another process accepts on it")
    _unlink(path)
    return path


def _accepts(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
            return True
        except OSError:
            return False


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def parse(argv):
    parser = argparse.ArgumentParser(prog="flink-bridge worker --python",
                                     description="Flink Bridge's Python worker (one process per session).")
    parser.add_argument("--port", type=int, default=50051, help="control port on the host (0: any free port)")
    parser.add_argument("--unix-socket", action="store_true",
                        help="listen on a Unix domain socket in the ring directory instead (how a bridge spawns it)")
    parser.add_argument("--unix-socket-path", metavar="PATH",
                        help="listen on this Unix domain socket instead (a sidecar's fixed address, in a folder it "
                             "shares with its TaskManager)")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default loopback)")
    parser.add_argument("--ring-dir", default=default_ring_directory(),
                        help="the only directory whose ring files this worker opens")
    parser.add_argument("--path", action="append", default=[],
                        help="a directory where segment modules are found (repeatable; PYTHONPATH works too)")
    parser.add_argument("--parent-pid", type=int, help="exit once this process is no longer the parent")
    parser.add_argument("--segments", metavar="MODULE.NAME",
                        help="the worker's own segments, which serve the pipeline's steps without a type: a list "
                             "(or dict) whose entry N is the class serving segment N")
    parser.add_argument("--max-streams", type=int, default=64,
                        help="data streams (sessions over grpc) and state transfers served at once; more are refused, "
                             "and control calls keep threads of their own beside them (default 64)")
    parser.add_argument("--refuse-pickled-state", action="store_true",
                        help="keep segments' state only through their own snapshot()/restore(bytes): a segment "
                             "without them, or a checkpoint holding pickled state, is refused (unpickling runs "
                             "code chosen by whoever can write the checkpoint storage)")
    parser.add_argument("--compat-segments", default="{}",
                        help="the segments the prototype's service (grpc_mode compat) serves, as JSON: "
                             '{"0": [{"name": ..., "type": ..., "config_json": ...}], ...}')
    return parser.parse_args(argv)


def session_environment(paths):
    """The environment of session processes: this runtime and the segments' directories (absolute) on
    PYTHONPATH."""
    runtime = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    entries = [runtime] + paths
    if os.environ.get("PYTHONPATH"):
        entries.append(os.environ["PYTHONPATH"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    if args.refuse_pickled_state:
        # Read by the segments of this process (the prototype's service) and of the session processes it starts.
        os.environ[PICKLED_STATE_ENV] = "refuse"
    segment_paths = [os.path.abspath(path) for path in args.path]
    # Session processes get these on their PYTHONPATH; the prototype's service runs segments in this process.
    sys.path[1:1] = segment_paths
    try:
        compat_segments = parse_segments(args.compat_segments)
        own_segments = WorkerSegments(args.segments)
        if args.segments:
            own_segments.table()
    except ValueError as e:
        sys.exit(f"flink-bridge worker: {e}")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Checked before a port is opened: a spawner that died while this process started is seen at once.
    if args.parent_pid is not None and os.getppid() != args.parent_pid:
        LOG.error("the spawner (pid %d) is gone before the worker started; exiting", args.parent_pid)
        sys.exit(ORPHANED)
    try:
        # Before the secret or the socket is written there, and before any ring in it is opened.
        ensure_private(args.ring_dir)
        secret = for_directory(args.ring_dir)
    except OSError as e:
        sys.exit(f"flink-bridge worker: {e}")
    supervisor = Supervisor("w" + uuid.uuid4().hex[:8], args.ring_dir, session_environment(segment_paths),
                            args.segments, args.max_streams)
    # Every data stream and state transfer holds a thread for as long as it is open: control calls get threads
    # beyond the most of those the supervisor lets in.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.max_streams + CONTROL_THREADS,
                                                    thread_name_prefix="grpc"),
                         interceptors=[Authenticator(secret)],
                         options=[("grpc.max_receive_message_length", 64 * 1024 * 1024),
                                  ("grpc.max_send_message_length", 64 * 1024 * 1024)])
    compat = CompatService(compat_segments, own_segments)
    server.add_generic_rpc_handlers(supervisor.handlers() + (compat.handler(supervisor.counted),))
    socket_path = (claim_socket(args.unix_socket_path) if args.unix_socket_path
                   else unix_socket(args.ring_dir) if args.unix_socket else None)
    address = f"unix:{socket_path}" if socket_path else f"{args.host}:{args.port}"
    port = server.add_insecure_port(address)
    if port == 0:
        LOG.error("cannot listen on %s", address)
        sys.exit(1)
    if not socket_path:
        address = f"{args.host}:{port}"
    server.start()

    def stop(reason, code, asked=False):
        """``asked``: SIGTERM, a request to stop (an upgrade, the TaskManager releasing the worker): sessions end
        as stopped, which their bridges tell from a failure; any other end is not that."""
        LOG.info("stopping: %s", reason)
        if asked:
            supervisor.stop_all_as_asked()
        else:
            supervisor.close_all()
        server.stop(1)
        if socket_path:
            _unlink(socket_path)
        os._exit(code)

    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=stop, args=("SIGTERM", 0, True)).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=stop, args=("SIGINT", 0)).start())
    print(f"{LISTENING_PREFIX}{address}", flush=True)
    # A spawner reads standard output for the listening line only: what the prototype's service's segments print in
    # this process goes to standard error, the worker's log, where it cannot fill a pipe nobody reads.
    sys.stdout = sys.stderr
    LOG.info("worker %s serving on %s, ring directory %s", supervisor.worker_id, address, args.ring_dir)
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if args.parent_pid is not None and os.getppid() != args.parent_pid:
            stop(f"the spawner (pid {args.parent_pid}) is gone", ORPHANED)
