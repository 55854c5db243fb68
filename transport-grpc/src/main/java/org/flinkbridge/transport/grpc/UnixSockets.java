package org.flinkbridge.transport.grpc;

import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.Epoll;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.util.concurrent.DefaultThreadFactory;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;

/**
 * gRPC over Unix domain sockets (Linux epoll, from grpc-netty-shaded): how a spawned worker listens. Its socket
 * lies in the private ring directory (mode 0700), so only the directory's owner can connect at all; the control
 * secret is checked on top.
 */
public final class UnixSockets {

    private UnixSockets() {}

    /** Event loops on daemon threads named {@code name}, for channels or a server over Unix domain sockets. */
    public static EventLoopGroup eventLoops(String name) {
        if (!Epoll.isAvailable()) {
            throw new IllegalStateException("Unix domain sockets need Linux epoll, which is unavailable here: "
                    + Epoll.unavailabilityCause());
        }
        return new EpollEventLoopGroup(1, new DefaultThreadFactory(name, true));
    }

    /**
     * The socket a worker serving {@code ringDirectory} from process {@code pid} listens on. Sockets of workers
     * that are gone (killed, so they could not remove theirs) are removed first: nothing accepts on them.
     */
    public static Path workerSocket(Path ringDirectory, long pid) throws IOException {
        try (DirectoryStream<Path> sockets = Files.newDirectoryStream(ringDirectory, "worker-*.sock")) {
            for (Path socket : sockets) {
                if (!accepts(socket)) {
                    Files.deleteIfExists(socket);
                }
            }
        }
        Path socket = ringDirectory.resolve("worker-" + pid + ".sock");
        Files.deleteIfExists(socket);
        return socket;
    }

    /**
     * {@code socket}, a fixed path a sidecar worker is told to listen on, made free: a socket file there that
     * nothing accepts on (its worker was killed) is removed.
     *
     * @throws IOException when a process accepts on it: two workers must not share one address
     */
    public static Path claimSocket(Path socket) throws IOException {
        if (accepts(socket)) {
            throw new IOException("another process accepts on " + socket);
        }
        Files.deleteIfExists(socket);
        return socket;
    }

    private static boolean accepts(Path socket) {
        if (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
            return false;
        }
        try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            return channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException refused) {
            return false;
        }
    }
}
