package org.flinkbridge.worker;

import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.RingFolder;
import org.flinkbridge.transport.grpc.ControlSecret;
import org.flinkbridge.transport.grpc.FrameStreamService;
import org.flinkbridge.transport.grpc.GrpcChannels;
import org.flinkbridge.transport.grpc.SessionMetadata;
import org.flinkbridge.transport.grpc.UnixSockets;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** A worker's gRPC endpoint: the control service, the streamed data plane and the prototype's service. */
public final class WorkerServer implements AutoCloseable {

    /** How long a stopping worker still answers control calls once its sessions' data planes have ended. */
    private static final long STOP_GRACE_MILLIS = 1_000;

    private final ControlService control;
    private final CompatService compat;
    private final Server server;
    private final String address;
    /** The socket file of a server on a Unix domain socket, or null. */
    private final Path socket;
    /** The event loops of a server on a Unix domain socket (none for TCP), shut down with it. */
    private final EventLoopGroup socketLoops;

    private WorkerServer(ControlService control, CompatService compat, Server server, String address, Path socket,
                         EventLoopGroup socketLoops) {
        this.control = control;
        this.compat = compat;
        this.server = server;
        this.address = address;
        this.socket = socket;
        this.socketLoops = socketLoops;
    }

    /**
     * Starts serving on {@code host:port} (port 0 picks a free one), every call authenticated by the control
     * secret of {@code ringDirectory} ({@link ControlSecret#forDirectory}); that folder is checked first
     * ({@link RingFolder#ensurePrivate}), since shm sessions' ring files will lie in it.
     *
     * @param ringDirectory the only directory whose ring files shm sessions may name
     * @param compatSegments the steps of each segment id for the prototype's service (may be empty)
     */
    public static WorkerServer start(String host, int port, Path ringDirectory,
                                     Map<Integer, List<StepSpec>> compatSegments) throws IOException {
        RingFolder.ensurePrivate(ringDirectory);
        return start(NettyServerBuilder.forAddress(new InetSocketAddress(host, port)), ringDirectory, compatSegments,
                ControlSecret.forDirectory(ringDirectory), null, null);
    }

    /**
     * Starts serving on a Unix domain socket: {@code socketPath} when given (a sidecar's fixed address, in a
     * folder it shares with its TaskManager), else one in {@code ringDirectory} named by this process's pid
     * ({@link UnixSockets#workerSocket}): the default of a spawned worker, which only the directory's owner can
     * reach. Its address is {@code unix:PATH}. The ring folder is checked ({@link RingFolder#ensurePrivate}) before
     * the secret or the socket is written.
     */
    public static WorkerServer startOnUnixSocket(Path ringDirectory, Path socketPath,
                                                 Map<Integer, List<StepSpec>> compatSegments) throws IOException {
        RingFolder.ensurePrivate(ringDirectory);
        ControlSecret secret = ControlSecret.forDirectory(ringDirectory);
        Path socket = socketPath != null ? UnixSockets.claimSocket(socketPath.toAbsolutePath())
                : UnixSockets.workerSocket(ringDirectory, ProcessHandle.current().pid());
        EventLoopGroup loops = UnixSockets.eventLoops("worker-unix-socket");
        try {
            return start(NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
                    .channelType(EpollServerDomainSocketChannel.class)
                    .bossEventLoopGroup(loops)
                    .workerEventLoopGroup(loops), ringDirectory, compatSegments, secret, socket, loops);
        } catch (IOException | RuntimeException e) {
            loops.shutdownGracefully();
            throw e;
        }
    }

    private static WorkerServer start(NettyServerBuilder builder, Path ringDirectory,
                                      Map<Integer, List<StepSpec>> compatSegments, ControlSecret secret, Path socket,
                                      EventLoopGroup socketLoops) throws IOException {
        TrafficCounter traffic = new TrafficCounter();
        ControlService control = new ControlService(ControlService.newWorkerId(), traffic, ringDirectory);
        CompatService compat = new CompatService(compatSegments);
        Server server = builder
                .maxInboundMessageSize(GrpcChannels.MAX_MESSAGE_BYTES)
                .intercept(secret.serverInterceptor())
                .addStreamTracerFactory(traffic)
                .addService(control)
                .addService(ServerInterceptors.intercept(
                        new FrameStreamService(control), SessionMetadata.serverInterceptor()))
                .addService(compat)
                .build()
                .start();
        String address = socket != null ? GrpcChannels.UNIX_PREFIX + socket
                : ((InetSocketAddress) server.getListenSockets().getFirst()).getHostString() + ":" + server.getPort();
        return new WorkerServer(control, compat, server, address, socket, socketLoops);
    }

    /** Where it listens: {@code HOST:PORT} or {@code unix:PATH}, as a bridge's worker address names it. */
    public String address() {
        return address;
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

    /**
     * Asked to stop (SIGTERM): every session answers the inputs it has read and ends as stopped, so that its
     * bridge moves it to a new worker without restarting the job; then the server closes.
     */
    public void stopAsAsked() throws Exception {
        if (control.stopAsAsked() > 0) {
            // A bridge that took a barrier's answer just before its data plane ended still takes its state.
            Thread.sleep(STOP_GRACE_MILLIS);
        }
        close();
    }

    @Override
    public void close() throws Exception {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
        control.closeAll();
        compat.closeAll();
        if (socketLoops != null) {
            socketLoops.shutdownGracefully(0, 1, TimeUnit.SECONDS);
        }
        if (socket != null) {
            Files.deleteIfExists(socket);
        }
    }
}
