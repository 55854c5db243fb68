"""The protocol's message classes, generated from proto/ by the Maven build (protoc's Python output).

protoc writes imports between the files as top-level modules (``import flink_worker_pb2``), so this folder
goes on ``sys.path`` and the modules are imported by those names only: importing one under two names would
register its descriptors twice.
"""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

try:
    import bridge_control_pb2 as control  # noqa: E402
    import bridge_data_pb2 as data  # noqa: E402
    import flink_worker_pb2 as prototype  # noqa: E402
except ImportError as missing:
    raise ImportError(f"the protocol's Python classes are missing from {_HERE}: build the project first "
                      f"(./flink-bridge build) ({missing})") from missing
