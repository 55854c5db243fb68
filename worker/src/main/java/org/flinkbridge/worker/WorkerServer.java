package org.flinkbridge.worker;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.SessionMetadata;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A worker's gRPC endpoint: the control service, the streamed data plane and the prototype's service. */
public final class WorkerServer implements AutoCloseable {

    private final ControlService control;
    private final CompatService compat;
    private final Server server;

    private WorkerServer(ControlService control, CompatService compat, Server server) {
        this.control = control;
        this.compat = compat;
        this.server = server;
    }

    /**
     * Starts serving on {@code host:port} (port 0 picks a free one), every call authenticated by the control
     * secret of {@code ringDirectory} ({@link ControlSecret#forDirectory}).
     *
     * @param ringDirectory the only directory whose ring files shm sessions may name
     * @param compatSegments the steps of each segment id for the prototype's service (may be empty)
     */
    public static WorkerServer start(String host, int port, Path ringDirectory,
                                     Map<Integer, List<StepSpec>> compatSegments) throws IOException {
        TrafficCounter traffic = new TrafficCounter();
        ControlService control = new ControlService(ControlService.newWorkerId(), traffic, ringDirectory);
        CompatService compat = new CompatService(compatSegments);
        ControlSecret secret = ControlSecret.forDirectory(ringDirectory);
        Server server = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
                .maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES)
                .intercept(secret.serverInterceptor())
                .addStreamTracerFactory(traffic)
                .addService(control)
                .addService(ServerInterceptors.intercept(
                        new FrameStreamService(control), SessionMetadata.serverInterceptor()))
                .addService(compat)
                .build()
                .start();
        return new WorkerServer(control, compat, server);
    }

    public int port() {
        return server.getPort();
    }

    public int openSessions() {
        return control.openSessions();
    }

    public void awaitTermination() throws InterruptedException {
        server.awaitTermination();
    }

    @Override
    public void close() throws Exception {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
        control.closeAll();
        compat.closeAll();
    }
}
