package org.flinkbridge.transport.grpc;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.data.BridgeDataGrpc;
import org.flinkbridge.proto.data.FrameBatch;

/**
 * The worker side of the streamed data plane. Each stream is bound to a session by its metadata; gRPC
 * delivers one stream's messages one at a time, so a session's batches are handled strictly in order while
 * different sessions run on different threads.
 */
public final class FrameStreamService extends BridgeDataGrpc.BridgeDataImplBase {

    /** Handles one session's frames; implemented by the worker runtime. */
    public interface SessionHandler {
        /** Processes a batch of input frames in order and returns the answer frames (possibly empty). */
        FrameBatch handle(FrameBatch inputs);
    }

    /** Finds a session by id, checking its token, and hears when its stream breaks. */
    public interface SessionResolver {
        /** @throws StatusException NOT_FOUND or PERMISSION_DENIED with a message naming the cause */
        SessionHandler attach(String sessionId, String token) throws StatusException;

        /**
         * The session's stream ended with an error (cancelled, or its connection lost) rather than being
         * completed by the bridge: the bridge is gone, and nothing else will close the session.
         */
        void streamBroken(String sessionId, Status status);
    }

    private final SessionResolver resolver;

    public FrameStreamService(SessionResolver resolver) {
        this.resolver = resolver;
    }

    @Override
    public StreamObserver<FrameBatch> exchange(StreamObserver<FrameBatch> replies) {
        String sessionId = SessionMetadata.SESSION_ID_CONTEXT.get();
        String token = SessionMetadata.TOKEN_CONTEXT.get();
        SessionHandler handler;
        try {
            if (sessionId == null || token == null) {
                throw Status.INVALID_ARGUMENT
                        .withDescription("data stream without flink-bridge-session/flink-bridge-token metadata")
                        .asException();
            }
            handler = resolver.attach(sessionId, token);
        } catch (StatusException e) {
            replies.onError(e);
            return new DiscardingObserver();
        }
        return new StreamObserver<>() {
            @Override
            public void onNext(FrameBatch inputs) {
                FrameBatch answers = handler.handle(inputs);
                if (answers.getFramesCount() > 0) {
                    replies.onNext(answers);
                }
            }

            @Override
            public void onError(Throwable t) {
                resolver.streamBroken(sessionId, Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                replies.onCompleted();
            }
        };
    }

    /** Swallows the messages of a stream that was already refused with an error status. */
    private static final class DiscardingObserver implements StreamObserver<FrameBatch> {
        @Override
        public void onNext(FrameBatch value) {}

        @Override
        public void onError(Throwable t) {}

        @Override
        public void onCompleted() {}
    }
}
