package org.flinkbridge.transport.grpc;

import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.data.BridgeDataGrpc;
import org.flinkbridge.proto.data.FrameBatch;

/**
 * The worker side of the streamed data plane. Each stream is bound to a session by its metadata; gRPC
 * delivers one stream's messages one at a time (and, here, one batch ahead of its answers going out), so a
 * session's batches are handled strictly in order while different sessions run on different threads.
 */
public final class FrameStreamService extends BridgeDataGrpc.BridgeDataImplBase {

    /** Handles one session's frames; implemented by the worker runtime. */
    public interface SessionHandler {
        /** Processes a batch of input frames in order and returns the answer frames (possibly empty). */
        FrameBatch handle(FrameBatch inputs);

        /**
         * Hands over what ends the stream when the worker is asked to stop: it completes the stream (status OK)
         * once the batch in hand is answered, and no later batch is taken, which tells the bridge to move the
         * session to a new worker.
         */
        void onStopAsked(Runnable endStream);
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
        // The next input batch is asked for only once the answers to this one could go out: a bridge slow to
        // take answers then holds back its own inputs (HTTP/2 flow control) instead of answers piling up here.
        ServerCallStreamObserver<FrameBatch> flow = (ServerCallStreamObserver<FrameBatch>) replies;
        flow.disableAutoRequest();
        boolean[] inputWanted = {false};
        flow.setOnReadyHandler(() -> {
            if (inputWanted[0] && flow.isReady()) {
                inputWanted[0] = false;
                flow.request(1);
            }
        });
        flow.request(1);
        // A stop ends the stream from another thread: one turn at a time on the replies, and nothing after the end.
        Object turn = new Object();
        boolean[] ended = {false};
        Runnable end = () -> {
            synchronized (turn) {
                if (!ended[0]) {
                    ended[0] = true;
                    replies.onCompleted();
                }
            }
        };
        handler.onStopAsked(end);
        return new StreamObserver<>() {
            @Override
            public void onNext(FrameBatch inputs) {
                synchronized (turn) {
                    if (ended[0]) {
                        return;
                    }
                    FrameBatch answers = handler.handle(inputs);
                    if (answers.getFramesCount() > 0) {
                        // A step may answer with more than it was given: large answers go in several batches.
                        FrameBatches.split(answers).forEach(replies::onNext);
                    }
                    if (flow.isReady()) {
                        flow.request(1);
                    } else {
                        inputWanted[0] = true;
                    }
                }
            }

            @Override
            public void onError(Throwable t) {
                resolver.streamBroken(sessionId, Status.fromThrowable(t));
            }

            @Override
            public void onCompleted() {
                end.run();
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
