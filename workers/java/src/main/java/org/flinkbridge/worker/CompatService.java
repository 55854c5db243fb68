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
import org.flinkbridge.proto.data.KeyCells;
import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.transport.grpc.CompatSegments;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.timers.SessionTimers;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The prototype's unary {@code flink_worker.FlinkWorkerService}, so a bridge written for the prototype can use
 * this worker: an adapter over {@link WorkerSession}, as the ring loop and the gRPC stream are. The prototype has
 * no sessions: one session per segment id serves every caller (unkeyed; a fresh one after a call fails), and a
 * window's records are kept by a session of its own until the window is triggered.
 */
final class CompatService extends FlinkWorkerServiceGrpc.FlinkWorkerServiceImplBase {

    /** Each call is one input; its number means nothing to the prototype's caller. */
    private static final long SEQUENCE = 0;

    private final Map<Integer, List<StepSpec>> segmentSteps;
    private final Map<Integer, WorkerSession> segments = new HashMap<>();
    private final Map<WindowKey, Window> windows = new HashMap<>();

    /** @param segmentSteps the steps of each segment id ({@code --compat-segments}) */
    CompatService(Map<Integer, List<StepSpec>> segmentSteps) {
        this.segmentSteps = Map.copyOf(segmentSteps);
    }

    @Override
    public synchronized void processMessage(ProcessMessageRequest request,
                                            StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            int id = request.getSegmentId();
            WorkerSession segment = segment(id);
            ResponseAnswers answers = new ResponseAnswers();
            segment.record(SEQUENCE, KeyGroups.NONE, null, WireRecords.record(request.getMessage()), answers);
            return answers.response(() -> segments.remove(id).close());
        });
    }

    @Override
    public synchronized void processWatermark(ProcessWatermarkRequest request,
                                              StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            int id = request.getSegmentId();
            ResponseAnswers answers = new ResponseAnswers();
            segment(id).watermark(SEQUENCE, request.getTimestamp(), answers);
            return answers.response(() -> segments.remove(id).close());
        });
    }

    @Override
    public synchronized void addToWindow(AddToWindowRequest request, StreamObserver<Empty> reply) {
        ControlService.call(reply, () -> {
            WindowKey key = new WindowKey(request.getSegmentId(), request.getWindowId());
            Window window = windows.get(key);
            if (window == null) {
                window = new Window(newSession(request.getSegmentId(), "window " + key));
                windows.put(key, window);
            }
            window.session.record(SEQUENCE, KeyGroups.NONE, null, WireRecords.record(request.getMessage()),
                    window.answers);
            if (window.answers.failure != null) {
                windows.remove(key).session.close();
                throw window.answers.failed();
            }
            return Empty.getDefaultInstance();
        });
    }

    @Override
    public synchronized void triggerWindow(TriggerWindowRequest request,
                                           StreamObserver<ProcessMessageResponse> reply) {
        ControlService.call(reply, () -> {
            Window window = windows.remove(new WindowKey(request.getSegmentId(), request.getWindowId()));
            if (window == null) {
                return ProcessMessageResponse.getDefaultInstance();
            }
            try {
                window.session.watermark(SEQUENCE, Long.MAX_VALUE, window.answers);
                return window.answers.response(() -> {});
            } finally {
                window.session.close();
            }
        });
    }

    private WorkerSession segment(int segmentId) throws Exception {
        WorkerSession segment = segments.get(segmentId);
        if (segment == null) {
            segment = newSession(segmentId, "compat segment " + segmentId);
            segments.put(segmentId, segment);
        }
        return segment;
    }

    private WorkerSession newSession(int segmentId, String name) throws Exception {
        List<StepSpec> steps = segmentSteps.get(segmentId);
        if (steps == null) {
            throw Status.NOT_FOUND.withDescription("segment " + segmentId + " is not defined; this worker "
                    + "knows segments " + segmentSteps.keySet() + " (start it with " + CompatSegments.OPTION
                    + " JSON)").asException();
        }
        WorkerSession session = WorkerSession.of(name, "", name, steps, false);
        String refused = session.withoutKey();
        if (refused != null) {
            session.close();
            throw Status.FAILED_PRECONDITION.withDescription(refused).asException();
        }
        return session;
    }

    synchronized void closeAll() {
        segments.values().forEach(WorkerSession::close);
        windows.values().forEach(window -> window.session.close());
        segments.clear();
        windows.clear();
    }

    /** The answers to one call as the prototype's response, or its failure as a status. */
    private static final class ResponseAnswers implements WorkerSession.Answers {
        final ProcessMessageResponse.Builder outputs = ProcessMessageResponse.newBuilder();
        String failure;

        @Override
        public void output(long sequence, Record output) {
            outputs.addMessages(WireRecords.message(output));
        }

        @Override
        public void endOfOutputs(long sequence) {}

        /** The message, cut to what the bridge takes (docs/protocol.md, "Error texts"); the session logged it whole. */
        @Override
        public void error(long sequence, String message) {
            failure = ErrorTexts.cut(message, ErrorTexts.MAX_BYTES);
        }

        /**
         * The prototype's service has no answer for a failed input, and a pipeline with dead-letter steps is
         * refused in compat mode before it runs: were one served, its failure fails the call.
         */
        @Override
        public void inputFailed(long sequence, String step, String errorClass, String message) {
            error(sequence, "step '" + step + "' failed: " + errorClass + ": " + message);
        }

        /** A response message takes outputs of any size the server accepts. */
        @Override
        public void checkEncodable(Record output) {}

        /** The prototype's sessions are not keyed, so they keep no cells: a session whose steps declare any is refused. */
        @Override
        public void cellWrites(long sequence, KeyCells writes) {
            throw new IllegalStateException("the prototype's service keeps no cells");
        }

        @Override
        public int maxCellWritesBytes() {
            return Integer.MAX_VALUE;
        }

        /** Nor timers: a session whose steps set them is refused too. */
        @Override
        public void timers(long sequence, SessionTimers timers) {
            throw new IllegalStateException("the prototype's service keeps no timers");
        }

        StatusException failed() {
            return Status.INTERNAL.withDescription(failure).asException();
        }

        /** The outputs; or, when the input failed, {@code discard} the session that failed and the failure. */
        ProcessMessageResponse response(Runnable discard) throws StatusException {
            if (failure != null) {
                discard.run();
                throw failed();
            }
            return outputs.build();
        }
    }

    private record WindowKey(int segmentId, WindowIdentifier window) {}

    private record Window(WorkerSession session, ResponseAnswers answers) {
        Window(WorkerSession session) {
            this(session, new ResponseAnswers());
        }
    }
}
