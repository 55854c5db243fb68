package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import io.grpc.Channel;
import io.grpc.Context;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.CallStreamObserver;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.control.Ack;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.RestoreStateRequest;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.SnapshotStateResponse;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Function;

/**
 * Worker state on the control plane travels in pieces ({@code KeyGroupState} with {@code continued}), packed
 * into messages of at most {@link GrpcChannels#MESSAGE_BUDGET_BYTES} of state, so that no state is too large
 * for one gRPC message and a transfer holds only a few messages in flight.
 */
public final class StatePieces {

    private static final int MESSAGE_BYTES = GrpcChannels.MESSAGE_BUDGET_BYTES;

    private StatePieces() {}

    /**
     * Cuts one key group's state into pieces of at most {@link GrpcChannels#MESSAGE_BUDGET_BYTES}, without
     * copying it.
     *
     * @param keyGroup the key group, or null for the state of a stream that is not keyed
     */
    public static List<KeyGroupState> cut(Integer keyGroup, ByteString state) {
        List<KeyGroupState> pieces = new ArrayList<>();
        int offset = 0;
        do {
            int end = Math.min(state.size(), offset + MESSAGE_BYTES);
            KeyGroupState.Builder piece = KeyGroupState.newBuilder()
                    .setState(state.substring(offset, end))
                    .setContinued(end < state.size());
            if (keyGroup != null) {
                piece.setKeyGroup(keyGroup);
            }
            pieces.add(piece.build());
            offset = end;
        } while (offset < state.size());
        return pieces;
    }

    /** Packs pieces, in order, into groups of at most the budget of state (a larger piece alone). */
    public static List<List<KeyGroupState>> pack(List<KeyGroupState> pieces) {
        List<List<KeyGroupState>> messages = new ArrayList<>();
        List<KeyGroupState> message = new ArrayList<>();
        long bytes = 0;
        for (KeyGroupState piece : pieces) {
            if (!message.isEmpty() && bytes + piece.getState().size() > MESSAGE_BYTES) {
                messages.add(message);
                message = new ArrayList<>();
                bytes = 0;
            }
            message.add(piece);
            bytes += piece.getState().size();
        }
        if (!message.isEmpty()) {
            messages.add(message);
        }
        return messages;
    }

    /**
     * Sends the pieces packed into messages, each when gRPC's flow control is ready for it, so a large state
     * is not buffered whole on its way; the caller completes the stream.
     *
     * @throws TimeoutException when the peer takes no message for {@code timeoutMillis}
     */
    public static <T> void send(List<KeyGroupState> pieces, Function<List<KeyGroupState>, T> message,
                                CallStreamObserver<T> out, long timeoutMillis)
            throws TimeoutException, InterruptedException {
        for (List<KeyGroupState> states : pack(pieces)) {
            long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
            while (!out.isReady()) {
                if (System.nanoTime() - deadline > 0) {
                    throw new TimeoutException("the peer took no state for " + timeoutMillis + " ms");
                }
                if (Thread.interrupted()) {
                    throw new InterruptedException();
                }
                if (Context.current().isCancelled()) {
                    // A server's call whose client cancelled it or whose deadline passed: no one reads on.
                    throw new TimeoutException("the peer cancelled the transfer: "
                            + Context.current().cancellationCause());
                }
                // Readiness comes back once the peer has read a message: one at a time, a millisecond is fine.
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1));
            }
            out.onNext(message.apply(states));
        }
    }

    /**
     * The bridge's side of {@code RestoreState}: streams the pieces to the worker's session as {@link #send}
     * does and waits for its acknowledgement. The transfer has no deadline as a whole, so a state of any size
     * gets through while it makes progress: each message must be taken, and the acknowledgement come, within
     * {@code timeoutMillis}.
     *
     * @throws StatusRuntimeException the worker's refusal, or the call's failure
     * @throws TimeoutException       when the worker takes no message, or does not acknowledge the last, for
     *                                {@code timeoutMillis} (the call is cancelled)
     */
    public static void restore(Channel channel, String sessionId, List<KeyGroupState> pieces, long timeoutMillis)
            throws TimeoutException, InterruptedException {
        CompletableFuture<Ack> acked = new CompletableFuture<>();
        ClientCallStreamObserver<RestoreStateRequest> requests = (ClientCallStreamObserver<RestoreStateRequest>)
                BridgeControlGrpc.newStub(channel)
                        .restoreState(new StreamObserver<>() {
                            @Override
                            public void onNext(Ack ack) {
                                acked.complete(ack);
                            }

                            @Override
                            public void onError(Throwable t) {
                                acked.completeExceptionally(t);
                            }

                            @Override
                            public void onCompleted() {}
                        });
        try {
            send(pieces, states -> RestoreStateRequest.newBuilder().setSessionId(sessionId).addAllStates(states)
                    .build(), requests, timeoutMillis);
            requests.onCompleted();
            try {
                acked.get(timeoutMillis, TimeUnit.MILLISECONDS);
            } catch (TimeoutException e) {
                throw new TimeoutException("the worker did not acknowledge its state within " + timeoutMillis + " ms");
            }
        } catch (TimeoutException e) {
            requests.cancel("the worker took no state", e);
            throw e;
        } catch (InterruptedException e) {
            requests.cancel("interrupted", e);
            throw e;
        } catch (ExecutionException e) {
            throw Status.fromThrowable(e.getCause()).asRuntimeException();
        }
    }

    /** A snapshot past the bound its receiver set: the call is cancelled at the first piece beyond it. */
    public static final class TooLarge extends Exception {
        private final long bytes;

        TooLarge(long bytes) {
            super("more than " + bytes + " bytes of state");
            this.bytes = bytes;
        }

        /** The bytes of state received, the piece that passed the bound included. */
        public long bytes() {
            return bytes;
        }
    }

    /**
     * The bridge's side of {@code SnapshotState}: takes the worker's pieces one message at a time (gRPC's flow
     * control holds the rest on the worker, so at most one message waits here) and returns them in order. The
     * transfer has no deadline as a whole: each message must come within {@code timeoutMillis} of the last.
     *
     * @param maxBytes the most state accepted; past it the call is cancelled
     * @throws StatusRuntimeException the worker's refusal, or the call's failure
     * @throws TimeoutException       when no message comes for {@code timeoutMillis} (the call is cancelled)
     * @throws TooLarge               when the state passes {@code maxBytes}
     */
    public static List<KeyGroupState> snapshot(Channel channel, SnapshotStateRequest request, long timeoutMillis,
                                               long maxBytes) throws TimeoutException, InterruptedException, TooLarge {
        // One message, or the call's end (a Status), waits at a time: the next is requested only once it is taken.
        BlockingQueue<Object> arrived = new ArrayBlockingQueue<>(2);
        CompletableFuture<ClientCallStreamObserver<SnapshotStateRequest>> call = new CompletableFuture<>();
        BridgeControlGrpc.newStub(channel).snapshotState(request,
                new ClientResponseObserver<SnapshotStateRequest, SnapshotStateResponse>() {
                    @Override
                    public void beforeStart(ClientCallStreamObserver<SnapshotStateRequest> stream) {
                        stream.disableAutoRequestWithInitial(1);
                        call.complete(stream);
                    }

                    @Override
                    public void onNext(SnapshotStateResponse message) {
                        arrived.add(message);
                    }

                    @Override
                    public void onError(Throwable t) {
                        // After a cancel nobody reads on, and the queue may hold a message: the end can go.
                        arrived.offer(Status.fromThrowable(t));
                    }

                    @Override
                    public void onCompleted() {
                        arrived.offer(Status.OK);
                    }
                });
        ClientCallStreamObserver<SnapshotStateRequest> stream = call.join();
        List<KeyGroupState> pieces = new ArrayList<>();
        long bytes = 0;
        try {
            while (true) {
                Object next = arrived.poll(timeoutMillis, TimeUnit.MILLISECONDS);
                if (next == null) {
                    throw new TimeoutException("the worker sent no state for " + timeoutMillis + " ms (after "
                            + bytes + " bytes)");
                }
                if (next instanceof Status status) {
                    if (!status.isOk()) {
                        throw status.asRuntimeException();
                    }
                    return pieces;
                }
                for (KeyGroupState piece : ((SnapshotStateResponse) next).getStatesList()) {
                    bytes += piece.getState().size();
                    if (bytes > maxBytes) {
                        throw new TooLarge(bytes);
                    }
                    pieces.add(piece);
                }
                stream.request(1);
            }
        } catch (TimeoutException | InterruptedException | TooLarge e) {
            stream.cancel("the bridge stopped taking the state", e);
            throw e;
        }
    }
}
