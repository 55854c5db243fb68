"""The prototype's unary ``flink_worker.FlinkWorkerService`` (``--transport=grpc --grpc-mode=compat``), so a
bridge written for the prototype can use this worker. The prototype has no sessions: the segments come from
``--compat-segments`` (the job passes them to a worker it spawns), one instance of each serves every caller,
and a window's records are kept by a fresh instance of its segment until the window is triggered. It runs in
the supervisor: calls are serialized, one record per call, as the prototype's service is.
"""
import json
import logging
import threading

import grpc
from google.protobuf import empty_pb2

from . import errors
from ._proto import prototype as prototype_pb2
from .sdk import Message
from .segments import SegmentChain, StepFailed

LOG = logging.getLogger("flink_bridge.compat")
SERVICE = "flink_worker.FlinkWorkerService"
MAX_WATERMARK = 2 ** 63 - 1


def parse_segments(text):
    """``{"0": [{"name": N, "type": T, "config_json": C}, ...], ...}`` as {segment id: [(name, type, config)]}."""
    try:
        described = json.loads(text)
        return {int(segment_id): [(step["name"], step["type"], step.get("config_json", ""))
                                  for step in steps]
                for segment_id, steps in described.items()}
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise ValueError(f"--compat-segments is not a JSON object of segment ids to lists of steps with name, "
                         f"type and config_json: {e}") from None


def _message(proto):
    return Message(proto.payload, dict(proto.headers), proto.timestamp)


def _response(outputs):
    response = prototype_pb2.ProcessMessageResponse()
    for output in outputs:
        message = response.messages.add(payload=output.payload, timestamp=output.timestamp)
        message.headers.update(output.headers)
    return response


class CompatService:

    def __init__(self, segments, own_segments):
        self.described = segments
        self.own_segments = own_segments
        self.segments = {}
        self.windows = {}
        self.lock = threading.Lock()

    def handler(self, counted):
        def unary(method, handler, request_type):
            return grpc.unary_unary_rpc_method_handler(
                handler, request_deserializer=counted(f"{SERVICE}/{method}", request_type.FromString),
                response_serializer=lambda response: response.SerializeToString())
        p = prototype_pb2
        return grpc.method_handlers_generic_handler(SERVICE, {
            "ProcessMessage": unary("ProcessMessage", self.process_message, p.ProcessMessageRequest),
            "ProcessWatermark": unary("ProcessWatermark", self.process_watermark, p.ProcessWatermarkRequest),
            "AddToWindow": unary("AddToWindow", self.add_to_window, p.AddToWindowRequest),
            "TriggerWindow": unary("TriggerWindow", self.trigger_window, p.TriggerWindowRequest),
        })

    def process_message(self, request, context):
        with self.lock:
            outputs = []
            self._run(context, self._segment(request.segment_id, context).process, _message(request.message),
                      outputs.append)
            return _response(outputs)

    def process_watermark(self, request, context):
        with self.lock:
            outputs = []
            self._run(context, self._segment(request.segment_id, context).on_watermark, request.timestamp,
                      outputs.append)
            return _response(outputs)

    def add_to_window(self, request, context):
        with self.lock:
            key = (request.segment_id, request.window_id.partition_key, request.window_id.window_start_time)
            window = self.windows.get(key)
            if window is None:
                window = self.windows[key] = (self._new(request.segment_id, context), [])
            segment, outputs = window
            self._run(context, segment.process, _message(request.message), outputs.append)
            return empty_pb2.Empty()

    def trigger_window(self, request, context):
        with self.lock:
            key = (request.segment_id, request.window_id.partition_key, request.window_id.window_start_time)
            window = self.windows.pop(key, None)
            if window is None:
                return prototype_pb2.ProcessMessageResponse()
            segment, outputs = window
            try:
                self._run(context, segment.on_watermark, MAX_WATERMARK, outputs.append)
            finally:
                segment.close()
            return _response(outputs)

    @staticmethod
    def _run(context, method, argument, emit):
        try:
            method(argument, emit)
        except StepFailed as e:
            text = f"{e}\n{e.details}"
            LOG.warning("a call failed: %s", text)
            context.abort(grpc.StatusCode.INTERNAL, errors.cut(text))

    def _segment(self, segment_id, context):
        segment = self.segments.get(segment_id)
        if segment is None:
            segment = self.segments[segment_id] = self._new(segment_id, context)
        return segment

    def _new(self, segment_id, context):
        steps = self.described.get(segment_id)
        if steps is None:
            context.abort(grpc.StatusCode.NOT_FOUND,
                          f"segment {segment_id} is not defined; this worker knows segments "
                          f"{sorted(self.described)} (start it with --compat-segments)")
        try:
            return SegmentChain(steps, self.own_segments.own_for(steps, segment_id))
        except ValueError as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          errors.for_bridge(f"cannot build segment {segment_id}: {e}", LOG))
