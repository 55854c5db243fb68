package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.data.BridgeDataGrpc;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.flinkbridge.proto.compat.Message;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FrameStreamClientTest {

    private static final int ANSWER_BATCHES = 2_000;

    /**
     * A worker that answers far more than the bridge takes: the client holds at most its bound of answer
     * batches and leaves the rest to gRPC's flow control, and every batch still arrives, in order.
     */
    @Test
    void answersTheBridgeHasNotTakenStayBoundedAndNoneIsLost(@TempDir Path dir) throws Exception {
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new ChattyWorker()).build().start();
        ManagedChannel channel = GrpcChannels.open("127.0.0.1:" + server.getPort(),
                ControlSecret.fromFile(dir.resolve(ControlSecret.FILE_NAME)));
        try (FrameStreamClient stream = new FrameStreamClient(channel, "s-1", "token", "session s-1", 1, 5_000)) {
            stream.send(Frame.newBuilder().setType(FrameType.RECORD).setSequence(0).build(), batch -> {
                throw new AssertionError("a one-frame batch had to wait to be sent");
            });

            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (stream.queuedBatches() < FrameStreamClient.MAX_QUEUED_BATCHES && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            // Time for any batch beyond the bound to arrive, were it asked for.
            Thread.sleep(500);
            assertEquals(FrameStreamClient.MAX_QUEUED_BATCHES, stream.queuedBatches());

            for (int expected = 0; expected < ANSWER_BATCHES; expected++) {
                FrameBatch batch = stream.poll(TimeUnit.SECONDS.toNanos(10));
                assertNotNull(batch, "answer batch " + expected + " never came");
                assertEquals(expected, batch.getFrames(0).getSequence());
                assertTrue(stream.queuedBatches() <= FrameStreamClient.MAX_QUEUED_BATCHES);
            }
        } finally {
            GrpcChannels.close(channel);
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }

    /**
     * Large records fill a batch long before its frame count: a batch is sent once it holds 4 MiB, so 256
     * records of 1 MiB never make one message of 256 MiB, which gRPC refuses (its limit is 64 MiB).
     */
    @Test
    void aBatchOfLargeRecordsIsSentOnceItHoldsItsBytes(@TempDir Path dir) throws Exception {
        BatchSizes worker = new BatchSizes();
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES).addService(worker).build().start();
        ManagedChannel channel = GrpcChannels.open("127.0.0.1:" + server.getPort(),
                ControlSecret.fromFile(dir.resolve(ControlSecret.FILE_NAME)));
        Message record = Message.newBuilder().setPayload(ByteString.copyFrom(new byte[1 << 20])).build();
        try (FrameStreamClient stream = new FrameStreamClient(channel, "s-1", "token", "session s-1", 256, 5_000)) {
            for (int i = 0; i < 256; i++) {
                stream.send(Frame.newBuilder().setType(FrameType.RECORD).setSequence(i).setRecord(record).build(),
                        answers -> {});
            }
            stream.flush(answers -> {});
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (worker.frames() < 256 && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
        } finally {
            GrpcChannels.close(channel);
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
        assertEquals(256, worker.frames(), "records that reached the worker; batch sizes: " + worker.sizes);
        assertTrue(worker.sizes.stream().allMatch(size -> size <= GrpcChannels.MESSAGE_BUDGET_BYTES + (2 << 20)),
                "batch sizes: " + worker.sizes);
    }

    /** Records the size of every batch it is sent. */
    private static final class BatchSizes extends BridgeDataGrpc.BridgeDataImplBase {
        final List<Integer> sizes = new CopyOnWriteArrayList<>();
        private final AtomicInteger frames = new AtomicInteger();

        int frames() {
            return frames.get();
        }

        @Override
        public StreamObserver<FrameBatch> exchange(StreamObserver<FrameBatch> replies) {
            return new StreamObserver<>() {
                @Override
                public void onNext(FrameBatch inputs) {
                    sizes.add(inputs.getSerializedSize());
                    frames.addAndGet(inputs.getFramesCount());
                }

                @Override
                public void onError(Throwable t) {}

                @Override
                public void onCompleted() {
                    replies.onCompleted();
                }
            };
        }
    }

    /** Answers the first input with many batches at once, heedless of flow control. */
    private static final class ChattyWorker extends BridgeDataGrpc.BridgeDataImplBase {
        @Override
        public StreamObserver<FrameBatch> exchange(StreamObserver<FrameBatch> replies) {
            return new StreamObserver<>() {
                @Override
                public void onNext(FrameBatch inputs) {
                    for (int i = 0; i < ANSWER_BATCHES; i++) {
                        replies.onNext(FrameBatch.newBuilder().addFrames(Frame.newBuilder()
                                .setType(FrameType.END_OF_OUTPUTS).setSequence(i)).build());
                    }
                }

                @Override
                public void onError(Throwable t) {}

                @Override
                public void onCompleted() {
                    replies.onCompleted();
                }
            };
        }
    }
}
