package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.KeyGroupState;
import org.flinkbridge.proto.control.SnapshotStateRequest;
import org.flinkbridge.proto.control.SnapshotStateResponse;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeoutException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The bridge's side of SnapshotState over a real gRPC server: a transfer longer than the timeout gets through
 * while each message comes in time, a stalled one is given up, and one past the size bound is cut off.
 */
class StateSnapshotTransferTest {

    private static final int MIB = 1 << 20;
    private static final SnapshotStateRequest REQUEST =
            SnapshotStateRequest.newBuilder().setSessionId("s").setCheckpointId(1).build();

    @TempDir
    Path dir;
    private Server server;
    private ManagedChannel channel;

    @AfterEach
    void stop() {
        GrpcChannels.close(channel);
        server.shutdownNow();
    }

    @Test
    void aTransferLongerThanTheTimeoutGetsThroughWhileEachPieceComesInTime() throws Exception {
        start(4, 300, 4);

        List<KeyGroupState> pieces = StatePieces.snapshot(channel, REQUEST, 1_000, Long.MAX_VALUE);

        assertEquals(4, pieces.size());
        for (int i = 0; i < pieces.size(); i++) {
            assertEquals(i, pieces.get(i).getKeyGroup(), "the pieces in the worker's order");
            assertEquals(MIB, pieces.get(i).getState().size());
        }
    }

    @Test
    void aWorkerThatStopsSendingIsGivenUpAfterTheTimeout() throws Exception {
        start(1, 0, 3);

        TimeoutException stalled = assertThrows(TimeoutException.class,
                () -> StatePieces.snapshot(channel, REQUEST, 500, Long.MAX_VALUE));

        assertTrue(stalled.getMessage().contains("no state for 500 ms (after " + MIB + " bytes)"),
                stalled.getMessage());
    }

    @Test
    void aStateLargerThanTheBoundIsCutOffAtThePieceThatPassesIt() throws Exception {
        start(8, 0, 8);

        StatePieces.TooLarge tooLarge = assertThrows(StatePieces.TooLarge.class,
                () -> StatePieces.snapshot(channel, REQUEST, 5_000, 3L * MIB));

        assertEquals(4L * MIB, tooLarge.bytes());
    }

    /**
     * A worker that answers with {@code sent} messages of one 1 MiB piece each (key groups 0, 1, ...), waiting
     * {@code pauseMillis} before each after the first, and ends the stream only if it sent all {@code planned}.
     */
    private void start(int sent, long pauseMillis, int planned) throws Exception {
        server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new BridgeControlGrpc.BridgeControlImplBase() {
                    @Override
                    public void snapshotState(SnapshotStateRequest request,
                                              StreamObserver<SnapshotStateResponse> reply) {
                        try {
                            for (int i = 0; i < sent; i++) {
                                if (i > 0) {
                                    Thread.sleep(pauseMillis);
                                }
                                reply.onNext(SnapshotStateResponse.newBuilder().addStates(KeyGroupState.newBuilder()
                                        .setKeyGroup(i).setState(ByteString.copyFrom(new byte[MIB]))).build());
                            }
                            if (sent == planned) {
                                reply.onCompleted();
                            }
                        } catch (InterruptedException e) {
                            reply.onError(e);
                        }
                    }
                })
                .build().start();
        channel = GrpcChannels.open("127.0.0.1:" + server.getPort(),
                ControlSecret.fromFile(dir.resolve(ControlSecret.FILE_NAME)));
    }
}
