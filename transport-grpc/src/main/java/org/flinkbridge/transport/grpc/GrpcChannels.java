package org.flinkbridge.transport.grpc;

import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;

import java.util.concurrent.TimeUnit;

/**
 * Channels from the bridge to a worker: plaintext, since workers are co-located (the bridge refuses an address that is
 * neither a Unix socket nor loopback unless the deployment allows plaintext to another host), and every call carries
 * the worker's {@link ControlSecret}.
 */
public final class GrpcChannels {

    /** Large enough for a batch of big records; a frame above it fails the stream with a clear status. */
    public static final int MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

    /**
     * What a sender puts in one message of a stream before it starts the next: a batch of frames is cut once it
     * holds this many bytes, a state transfer carries at most this much state per message. Far below
     * {@link #MAX_MESSAGE_BYTES}, so a transfer holds only a few messages in flight.
     */
    public static final int MESSAGE_BUDGET_BYTES = 4 << 20;

    /**
     * The headers (a status's description among them) the bridge takes in one answer: 8 times grpc-java's 8 KiB, so
     * that a worker that sends a long status text anyway still has it reach the job's failure. Workers cut theirs
     * to far less (docs/protocol.md, "Error texts"); past this, the call fails as a transport error.
     */
    public static final int MAX_METADATA_BYTES = 64 * 1024;

    private GrpcChannels() {}

    /** How a worker address names a Unix domain socket: {@code unix:/path/to/socket}. */
    public static final String UNIX_PREFIX = "unix:";

    /** A channel to {@code host:port}, or to {@code unix:PATH}, whose calls carry {@code secret}. */
    public static ManagedChannel open(String address, ControlSecret secret) {
        NettyChannelBuilder builder;
        if (address.startsWith(UNIX_PREFIX)) {
            builder = NettyChannelBuilder.forAddress(new DomainSocketAddress(address.substring(UNIX_PREFIX.length())))
                    .channelType(EpollDomainSocketChannel.class)
                    .eventLoopGroup(UnixSocketLoops.CLIENT)
                    // The socket's path is no host name: HTTP/2 servers stricter than grpc's (hyper's, under the
                    // Rust worker) refuse it as the :authority.
                    .overrideAuthority("localhost");
        } else {
            HostPort hostPort = HostPort.parse(address);
            builder = NettyChannelBuilder.forAddress(hostPort.host(), hostPort.port());
        }
        return builder
                .usePlaintext()
                .intercept(secret.clientInterceptor())
                .maxInboundMessageSize(MAX_MESSAGE_BYTES)
                .maxInboundMetadataSize(MAX_METADATA_BYTES)
                .keepAliveTime(30, TimeUnit.SECONDS)
                .build();
    }

    /** The event loops of channels over Unix domain sockets (epoll), made on first use and shared. */
    private static final class UnixSocketLoops {
        static final EventLoopGroup CLIENT = UnixSockets.eventLoops("grpc-unix-client");
    }

    public static void close(ManagedChannel channel) {
        channel.shutdownNow();
        try {
            channel.awaitTermination(5, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** A failed call's status in one phrase: its code, and its description when it has one. */
    public static String describe(Status status) {
        return status.getCode() + (status.getDescription() == null ? "" : " (" + status.getDescription() + ")");
    }

    /** A worker address as written on the command line or in the pipeline file. */
    public record HostPort(String host, int port) {
        public static HostPort parse(String address) {
            int colon = address.lastIndexOf(':');
            if (colon <= 0 || colon == address.length() - 1) {
                throw new IllegalArgumentException("worker address '" + address + "' is not HOST:PORT");
            }
            try {
                int port = Integer.parseInt(address.substring(colon + 1));
                if (port < 1 || port > 65535) {
                    throw new NumberFormatException();
                }
                return new HostPort(address.substring(0, colon), port);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                        "worker address '" + address + "' has no valid port (1-65535)");
            }
        }
    }
}
