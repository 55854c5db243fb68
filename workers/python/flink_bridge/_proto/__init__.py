"""The protocol's message classes, generated from proto/wire by the Maven build (protoc's Python output), kept in a
descriptor pool of the worker's own.

protoc's output registers its files in protobuf's default pool, where a message name may be defined by one file
only. A segment package written for the prototype carries its own generated stubs of the prototype's
``flink_worker.proto`` (as the prototype lays them out, ``flink_worker/flink_worker.proto``), which define the same
messages under another file name: in the default pool the second registration fails, whichever comes first. So the
worker runs the generated modules against a private pool, under module names of its own, and leaves the default
pool and the top-level module names to the segments.
"""
import os
import re
import types

from google.protobuf import descriptor_pool, empty_pb2

_HERE = os.path.dirname(os.path.abspath(__file__))
# The generated modules, each after those it imports (bridge_data imports flink_worker).
_MODULES = ("flink_worker_pb2", "bridge_control_pb2", "bridge_data_pb2")
# What protoc writes to reach the default pool, and each sibling file as a top-level module.
_DEFAULT_POOL = "from google.protobuf import descriptor_pool as _descriptor_pool\n"
_SIBLING_IMPORT = re.compile(r"^import (\w+_pb2) as (\w+)$", re.MULTILINE)


class _PrivatePool:
    """Stands in for the ``descriptor_pool`` module in the generated code: its default pool is the worker's."""

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(empty_pb2.DESCRIPTOR.serialized_pb)

    @classmethod
    def Default(cls):
        return cls.pool


def _load(name, siblings):
    path = os.path.join(_HERE, name + ".py")
    try:
        with open(path, encoding="utf-8") as file:
            source = file.read()
    except FileNotFoundError as missing:
        raise ImportError(f"the protocol's Python classes are missing from {_HERE}: build the project first "
                          f"(./flink-bridge build) ({missing})") from missing
    if _DEFAULT_POOL not in source:
        raise ImportError(f"{path} does not reach the descriptor pool as protoc's output did when this runtime was "
                          f"written ({_DEFAULT_POOL.strip()!r}): regenerate it with the project's build")
    source = source.replace(_DEFAULT_POOL, "_descriptor_pool = _PrivatePool\n")
    source = _SIBLING_IMPORT.sub(lambda m: f"{m.group(2)} = _siblings[{m.group(1)!r}]", source)
    module = types.ModuleType(f"{__name__}.{name}")
    module.__file__ = path
    module.__dict__.update(_PrivatePool=_PrivatePool, _siblings=siblings)
    exec(compile(source, path, "exec"), module.__dict__)
    return module


def _load_all():
    loaded = {}
    for name in _MODULES:
        loaded[name] = _load(name, loaded)
    return loaded


_loaded = _load_all()
control = _loaded["bridge_control_pb2"]
data = _loaded["bridge_data_pb2"]
prototype = _loaded["flink_worker_pb2"]
