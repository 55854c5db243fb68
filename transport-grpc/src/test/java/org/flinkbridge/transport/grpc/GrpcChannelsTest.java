package org.flinkbridge.transport.grpc;

import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.HealthRequest;
import org.flinkbridge.proto.control.HealthResponse;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class GrpcChannelsTest {

    /**
     * A worker that does not cut its status text (docs/protocol.md, "Error texts") still has a text of 32 KiB,
     * four times grpc-java's default limit on headers, reach the bridge whole instead of a transport error.
     */
    @Test
    void aStatusTextPastGrpcsDefaultHeaderLimitReachesTheBridge(@TempDir Path dir) throws Exception {
        String text = "session s-1: cannot build segment 0: " + "€".repeat(32 * 1024 / 9);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .addService(new BridgeControlGrpc.BridgeControlImplBase() {
                    @Override
                    public void health(HealthRequest request, StreamObserver<HealthResponse> reply) {
                        reply.onError(Status.INVALID_ARGUMENT.withDescription(text).asException());
                    }
                }).build().start();
        ManagedChannel channel = GrpcChannels.open("127.0.0.1:" + server.getPort(),
                ControlSecret.fromFile(dir.resolve(ControlSecret.FILE_NAME)));
        try {
            StatusRuntimeException failed = assertThrows(StatusRuntimeException.class, () ->
                    BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS)
                            .health(HealthRequest.getDefaultInstance()));
            assertEquals(Status.Code.INVALID_ARGUMENT, failed.getStatus().getCode(), failed.toString());
            assertEquals(text, failed.getStatus().getDescription());
        } finally {
            GrpcChannels.close(channel);
            server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
        }
    }
}
