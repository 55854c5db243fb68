package org.flinkbridge.worker;

import io.grpc.ManagedChannel;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A worker server for each test, on a ring directory of its own, and a control channel to it. */
abstract class WorkerServerFixture {

    @TempDir
    Path dir;
    /** The worker's ring directory. */
    Path rings;
    WorkerServer server;
    ManagedChannel channel;
    BridgeControlGrpc.BridgeControlBlockingStub control;

    @BeforeEach
    void startServer() throws IOException {
        rings = dir.resolve("rings");
        server = WorkerServer.start("127.0.0.1", 0, rings, Map.of());
        channel = org.flinkbridge.transport.grpc.GrpcChannels.open("127.0.0.1:" + server.port(),
                org.flinkbridge.transport.grpc.ControlSecret.forDirectory(rings));
        control = BridgeControlGrpc.newBlockingStub(channel).withDeadlineAfter(10, TimeUnit.SECONDS);
    }

    /** After a subclass's own clean-up (JUnit runs a superclass's {@code @AfterEach} last). */
    @AfterEach
    void stopServer() throws Exception {
        org.flinkbridge.transport.grpc.GrpcChannels.close(channel);
        server.close();
    }
}
