"""A segment package laid out as the prototype's worker expected one: its own generated stubs of the prototype's
proto (flink_worker_pb2.py, generated from flink_worker/flink_worker.proto by the test that uses this package)
beside the segments that import their Message from them."""
