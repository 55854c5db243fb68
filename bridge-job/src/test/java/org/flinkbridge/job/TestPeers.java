package org.flinkbridge.job;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** Real gRPC servers on loopback that stand in for workers written by others. */
final class TestPeers {

    private TestPeers() {}

    static Server start(BindableService... services) throws IOException {
        NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0));
        for (BindableService service : services) {
            builder.addService(service);
        }
        return builder.build().start();
    }

    static void stop(Server server) throws InterruptedException {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    /** A real worker process started on its own (sidecar mode), listening on a free loopback port. */
    static Process startWorker() throws IOException {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", TestPipelines.workerJar(), "--port", "0")
                .redirectErrorStream(true).start();
    }

    /** The HOST:PORT a worker started by {@link #startWorker} listens on, from the first line it prints. */
    static String workerAddress(Process worker) throws IOException {
        String listening = new BufferedReader(new InputStreamReader(worker.getInputStream(), StandardCharsets.UTF_8))
                .readLine();
        if (listening == null || !listening.startsWith("flink-bridge worker listening on 127.0.0.1:")) {
            throw new AssertionError("the worker did not report its address: " + listening);
        }
        return listening.substring(listening.lastIndexOf(' ') + 1);
    }

    /** A loopback port nothing listens on (bound, then released). */
    static int closedPort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
