package org.flinkbridge.transport.grpc;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import org.flinkbridge.proto.data.BridgeDataGrpc;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;

import java.io.IOException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The bridge side of one session's streamed data plane: frames are sent in batches over one bidirectional
 * stream, and the worker's answer batches are queued for the task thread to poll.
 *
 * <p>Flow control both ways: {@link #flush} waits while the transport is not ready, so a slow worker is
 * backpressure and never a growing buffer; and at most {@value #MAX_QUEUED_BATCHES} answer batches are asked
 * of gRPC ahead of the task thread's polls, so a bridge that is slow to take answers holds the worker back
 * through HTTP/2 flow control instead of queueing without bound. Not thread-safe: one task thread sends and
 * polls; gRPC's threads only enqueue.
 */
public final class FrameStreamClient implements AutoCloseable {

    /** Answer batches received and not yet polled, at most. */
    static final int MAX_QUEUED_BATCHES = 16;

    private final String sessionName;
    private final int maxBatchFrames;
    private final long readyTimeoutNanos;
    private final LinkedBlockingQueue<Object> incoming = new LinkedBlockingQueue<>();
    private final Object readyLock = new Object();
    private final ClientCallStreamObserver<FrameBatch> outbound;
    private FrameBatch.Builder batch = FrameBatch.newBuilder();
    private int batchBytes;
    private volatile Throwable failure;
    private volatile Runnable onArrival = () -> {};
    private boolean closed;

    public FrameStreamClient(
            ManagedChannel channel,
            String sessionId,
            String token,
            String sessionName,
            int maxBatchFrames,
            long readyTimeoutMillis) {
        this.sessionName = sessionName;
        this.maxBatchFrames = maxBatchFrames;
        this.readyTimeoutNanos = TimeUnit.MILLISECONDS.toNanos(readyTimeoutMillis);
        BridgeDataGrpc.BridgeDataStub stub = BridgeDataGrpc.newStub(channel)
                .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(
                        SessionMetadata.headers(sessionId, token)));
        Inbound inbound = new Inbound();
        stub.exchange(inbound);
        this.outbound = inbound.requestStream;
    }

    /** Takes answer batches that arrive while the task thread waits to send. */
    @FunctionalInterface
    public interface Answers {
        void take(FrameBatch answers) throws IOException;
    }

    /**
     * Adds a frame to the current batch, sending the batch when it is full in frames or bytes (see
     * {@link #flush}).
     */
    public void send(Frame frame, Answers whileWaiting) throws IOException {
        int size = frame.getSerializedSize();
        if (batchBytes > 0 && batchBytes + size > GrpcChannels.MESSAGE_BUDGET_BYTES) {
            flush(whileWaiting);
        }
        batch.addFrames(frame);
        batchBytes += size;
        if (batch.getFramesCount() >= maxBatchFrames || batchBytes >= GrpcChannels.MESSAGE_BUDGET_BYTES) {
            flush(whileWaiting);
        }
    }

    /**
     * Sends the current batch, if any, waiting while gRPC is not ready to take more. Answers that arrive
     * meanwhile go to {@code whileWaiting}: a worker that cannot send its answers stops taking inputs, so
     * they must be taken for this wait to end.
     */
    public void flush(Answers whileWaiting) throws IOException {
        if (batch.getFramesCount() == 0) {
            return;
        }
        throwIfFailed();
        awaitReady(whileWaiting);
        outbound.onNext(batch.build());
        batch = FrameBatch.newBuilder();
        batchBytes = 0;
    }

    /**
     * Calls {@code listener} on gRPC's thread whenever a batch (or the stream's end) arrives, so the task
     * thread can be told to poll while it has nothing else to do. It must return quickly.
     */
    public void onArrival(Runnable listener) {
        onArrival = listener;
    }

    /** The next batch from the worker, waiting up to {@code timeoutNanos}; null when none came in time. */
    public FrameBatch poll(long timeoutNanos) throws IOException {
        Object next;
        try {
            next = timeoutNanos <= 0 ? incoming.poll() : incoming.poll(timeoutNanos, TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException(sessionName + ": interrupted while waiting for the worker", e);
        }
        if (next instanceof FrameBatch received) {
            outbound.request(1);
            return received;
        }
        if (next != null) {
            throw streamFailure((Throwable) next);
        }
        return null;
    }

    /** Waits until gRPC takes more, handing over answers meanwhile; fails after the timeout with none taken. */
    private void awaitReady(Answers whileWaiting) throws IOException {
        long deadline = System.nanoTime() + readyTimeoutNanos;
        while (!outbound.isReady()) {
            FrameBatch answers = poll(0);
            if (answers != null) {
                whileWaiting.take(answers);
                deadline = System.nanoTime() + readyTimeoutNanos;
                continue;
            }
            throwIfFailed();
            long remaining = deadline - System.nanoTime();
            if (remaining <= 0) {
                throw new IOException(sessionName + ": the worker took no data for "
                        + TimeUnit.NANOSECONDS.toMillis(readyTimeoutNanos) + " ms (stream not ready)");
            }
            synchronized (readyLock) {
                // Woken by readiness, an arriving answer or the stream's end; checked again above.
                if (!outbound.isReady() && incoming.isEmpty() && failure == null) {
                    try {
                        readyLock.wait(Math.max(1, Math.min(100, TimeUnit.NANOSECONDS.toMillis(remaining))));
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        throw new IOException(sessionName + ": interrupted while sending to the worker", e);
                    }
                }
            }
        }
    }

    private void wakeSender() {
        synchronized (readyLock) {
            readyLock.notifyAll();
        }
    }

    private void throwIfFailed() throws IOException {
        Throwable cause = failure;
        if (cause != null) {
            throw streamFailure(cause);
        }
    }

    private IOException streamFailure(Throwable cause) {
        failure = cause;
        Status status = Status.fromThrowable(cause);
        // A worker ends a stream itself only when it is asked to stop, after answering every batch it took.
        String reason = status.isOk()
                ? "the worker stopped as asked and ended the data stream, having answered every input batch it took"
                : "data stream failed: " + GrpcChannels.describe(status);
        return new IOException(sessionName + ": " + reason, cause);
    }

    /** Whether the worker ended the stream itself, as a worker asked to stop does. */
    public boolean workerStopped() {
        Throwable cause = failure;
        return cause != null && Status.fromThrowable(cause).isOk();
    }

    /** Answer batches received and not yet polled. */
    int queuedBatches() {
        return (int) incoming.stream().filter(FrameBatch.class::isInstance).count();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (failure == null) {
            outbound.onCompleted();
        } else {
            outbound.cancel("session closed after a failure", null);
        }
    }

    private final class Inbound implements ClientResponseObserver<FrameBatch, FrameBatch> {
        private ClientCallStreamObserver<FrameBatch> requestStream;

        @Override
        public void beforeStart(ClientCallStreamObserver<FrameBatch> requestStream) {
            this.requestStream = requestStream;
            requestStream.disableAutoRequestWithInitial(MAX_QUEUED_BATCHES);
            requestStream.setOnReadyHandler(FrameStreamClient.this::wakeSender);
        }

        @Override
        public void onNext(FrameBatch value) {
            incoming.add(value);
            wakeSender();
            onArrival.run();
        }

        @Override
        public void onError(Throwable t) {
            incoming.add(t);
            synchronized (readyLock) {
                failure = t;
                readyLock.notifyAll();
            }
            onArrival.run();
        }

        @Override
        public void onCompleted() {
            StatusException stopped = Status.OK.withDescription("the worker ended the data stream").asException();
            incoming.add(stopped);
            synchronized (readyLock) {
                failure = stopped;
                readyLock.notifyAll();
            }
            onArrival.run();
        }
    }
}
