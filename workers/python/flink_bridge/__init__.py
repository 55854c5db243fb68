"""Flink Bridge's Python worker: serves a Flink job's sessions over the worker protocol (docs/protocol.md).

One control server per TaskManager (``python3 workers/python/``) and one OS process per session, so Flink slots never
share a GIL. Segments written for the prototype's worker run unchanged; see ``flink_bridge.sdk``.
"""
