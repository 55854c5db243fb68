package org.flinkbridge.worker;

import com.google.protobuf.Empty;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.compat.AddToWindowRequest;
import org.flinkbridge.proto.compat.FlinkWorkerServiceGrpc;
import org.flinkbridge.proto.compat.ProcessMessageRequest;
import org.flinkbridge.proto.compat.ProcessMessageResponse;
import org.flinkbridge.proto.compat.ProcessWatermarkRequest;
import org.flinkbridge.proto.compat.TriggerWindowRequest;
import org.flinkbridge.proto.compat.WindowIdentifier;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.worker.sdk.Segment;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The prototype's unary {@code flink_worker.FlinkWorkerService}, so a bridge written for the prototype can
 * use this worker. The prototype has no sessions: one instance of each segment serves every caller, and a
 * window's records are kept by a fresh instance of the segment until the window is triggered.
 */
final class CompatService extends FlinkWorkerServiceGrpc.FlinkWorkerServiceImplBase {

    private final Map<Integer, List<StepSpec>> segmentSteps;
    private final Map<Integer, Segment> segments = new HashMap<>();
    private final Map<WindowKey, WindowBuffer> windows = new HashMap<>();

    /** @param segmentSteps the steps of each segment id, as the pipeline file groups them */
    CompatService(Map<Integer, List<StepSpec>> segmentSteps) {
        this.segmentSteps = Map.copyOf(segmentSteps);
    }

    @Override
    public synchronized void processMessage(ProcessMessageRequest request,
                                            StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            ProcessMessageResponse.Builder outputs = ProcessMessageResponse.newBuilder();
            segment(request.getSegmentId()).process(WireRecords.record(request.getMessage()),
                    output -> outputs.addMessages(WireRecords.message(output)));
            return outputs.build();
        });
    }

    @Override
    public synchronized void processWatermark(ProcessWatermarkRequest request,
                                              StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            ProcessMessageResponse.Builder outputs = ProcessMessageResponse.newBuilder();
            segment(request.getSegmentId()).onWatermark(request.getTimestamp(),
                    output -> outputs.addMessages(WireRecords.message(output)));
            return outputs.build();
        });
    }

    @Override
    public synchronized void addToWindow(AddToWindowRequest request, StreamObserver<Empty> reply) {
        ControlService.call(reply, () -> {
            WindowKey key = new WindowKey(request.getSegmentId(), request.getWindowId());
            WindowBuffer existing = windows.get(key);
            WindowBuffer window = existing != null ? existing
                    : new WindowBuffer(newSegment(request.getSegmentId(), "window " + key));
            windows.put(key, window);
            window.segment.process(WireRecords.record(request.getMessage()),
                    output -> window.outputs.addMessages(WireRecords.message(output)));
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public synchronized void triggerWindow(TriggerWindowRequest request,
                                           StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            WindowKey key = new WindowKey(request.getSegmentId(), request.getWindowId());
            WindowBuffer window = windows.remove(key);
            if (window == null) {
                return ProcessMessageResponse.getDefaultInstance();
            }
            try (Segment segment = window.segment) {
                segment.onWatermark(Long.MAX_VALUE,
                        output -> window.outputs.addMessages(WireRecords.message(output)));
            }
            return window.outputs.build();
        });
    }

    private Segment segment(int segmentId) throws StatusException {
        Segment segment = segments.get(segmentId);
        if (segment == null) {
            segment = newSegment(segmentId, "compat segment " + segmentId);
            segments.put(segmentId, segment);
        }
        return segment;
    }

    private Segment newSegment(int segmentId, String name) throws StatusException {
        List<StepSpec> steps = segmentSteps.get(segmentId);
        if (steps == null) {
            throw Status.NOT_FOUND.withDescription("segment " + segmentId + " is not defined; this worker "
                    + "knows segments " + segmentSteps.keySet() + " (start it with --pipeline FILE)")
                    .asException();
        }
        return SegmentInstances.create(steps, name);
    }

    synchronized void closeAll() throws Exception {
        for (Segment segment : segments.values()) {
            segment.close();
        }
        for (WindowBuffer window : windows.values()) {
            window.segment.close();
        }
        segments.clear();
        windows.clear();
    }

    private record WindowKey(int segmentId, WindowIdentifier window) {}

    private static final class WindowBuffer {
        final Segment segment;
        final ProcessMessageResponse.Builder outputs = ProcessMessageResponse.newBuilder();

        WindowBuffer(Segment segment) {
            this.segment = segment;
        }
    }
}
