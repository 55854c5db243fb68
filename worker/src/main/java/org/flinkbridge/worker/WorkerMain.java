package org.flinkbridge.worker;

import org.flinkbridge.proto.control.StepSpec;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Starts a worker: {@code [--host H] [--port N] [--pipeline FILE] [--exit-with-parent]}. Prints one line
 * {@code flink-bridge worker listening on HOST:PORT} once it serves, which is how a spawning bridge learns
 * the port. A worker spawned by a TaskManager passes {@code --exit-with-parent}, so it does not outlive a
 * TaskManager that crashed.
 */
public final class WorkerMain {

    public static final String LISTENING_PREFIX = "flink-bridge worker listening on ";

    private WorkerMain() {}

    public static void main(String[] args) throws Exception {
        String host = "127.0.0.1";
        int port = 0;
        Map<Integer, List<StepSpec>> compatSegments = Map.of();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--host" -> host = value(args, ++i, arg);
                case "--port" -> port = parsePort(value(args, ++i, arg));
                case "--pipeline" -> {
                    try {
                        compatSegments = PipelineSegments.read(Path.of(value(args, ++i, arg)));
                    } catch (org.flinkbridge.pipeline.PipelineException e) {
                        fail(e.getMessage());
                    }
                }
                case "--exit-with-parent" -> exitWithParent();
                case "-h", "--help" -> {
                    System.out.println("usage: worker [--host HOST] [--port PORT] [--pipeline FILE] [--exit-with-parent]");
                    return;
                }
                default -> fail("unknown argument '" + arg + "'");
            }
        }
        WorkerServer server;
        try {
            server = WorkerServer.start(host, port, compatSegments);
        } catch (java.io.IOException e) {
            fail("cannot listen on " + host + ":" + port + ": " + e.getMessage());
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.close();
            } catch (Exception e) {
                System.err.println("flink-bridge worker: shutdown failed: " + e);
            }
        }, "worker-shutdown"));
        System.out.println(LISTENING_PREFIX + host + ":" + server.port());
        System.out.flush();
        server.awaitTermination();
    }

    private static void exitWithParent() {
        ProcessHandle parent = ProcessHandle.current().parent()
                .orElseThrow(() -> new IllegalStateException("--exit-with-parent: this process has no parent"));
        parent.onExit().thenRun(() -> {
            System.err.println("flink-bridge worker: the process that started it (" + parent.pid() + ") ended; exiting");
            System.exit(3);
        });
    }

    private static String value(String[] args, int index, String option) {
        if (index >= args.length) {
            fail(option + " needs a value");
        }
        return args[index];
    }

    private static int parsePort(String text) {
        try {
            int port = Integer.parseInt(text);
            if (port >= 0 && port <= 65535) {
                return port;
            }
        } catch (NumberFormatException ignored) {
            // reported below with the offending text
        }
        fail("--port '" + text + "' is not a port number (0-65535)");
        return -1;
    }

    private static void fail(String message) {
        System.err.println("flink-bridge worker: " + message);
        System.exit(2);
    }
}
