package org.flinkbridge.worker;

import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.protocol.WorkerLaunch;
import org.flinkbridge.transport.grpc.CompatSegments;
import org.flinkbridge.transport.shm.RingFiles;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Starts a worker: {@code [--host H] [--port N | --unix-socket | --unix-socket-path PATH] [--ring-dir DIR]
 * [--compat-segments JSON] [--parent-pid PID]}; {@code --compat-segments} gives the steps of each segment id for
 * the prototype's service. {@code --unix-socket} listens on a Unix domain socket in the ring directory instead of
 * TCP (how a bridge spawns it: only the directory's owner can connect); {@code --unix-socket-path} on the socket
 * named (a sidecar's fixed address, which its TaskManager's jobs give as {@code unix:PATH}); every call carries
 * the control secret either way. The ring
 * directory (default {@code /dev/shm/flink-bridge-$USER}) is the only one whose ring files shm sessions may
 * name: it must be the bridge's {@code flink-bridge.shm.directory}. Prints one line
 * {@code flink-bridge worker listening on HOST:PORT} once it serves, which is how a spawning bridge learns
 * the port. A TaskManager that spawns a worker passes its own pid as {@code --parent-pid}, so the worker
 * does not outlive it, even when it dies while the worker starts (see {@link ParentWatch}).
 */
public final class WorkerMain {


    private WorkerMain() {}

    /** The worker's own log configuration, unless the command line names another. */
    private static final String LOG_CONFIGURATION = "flink-bridge-worker-log4j2.properties";

    public static void main(String[] args) throws Exception {
        if (System.getProperty("log4j.configurationFile") == null) {
            System.setProperty("log4j.configurationFile", LOG_CONFIGURATION);
        }
        String host = "127.0.0.1";
        int port = 0;
        boolean unixSocket = false;
        Path socketPath = null;
        Path ringDirectory = RingFiles.defaultDirectory();
        Map<Integer, List<StepSpec>> compatSegments = Map.of();
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            switch (arg) {
                case "--host" -> host = value(args, ++i, arg);
                case "--port" -> port = (int) parseNumber(arg, value(args, ++i, arg), 0, 65535,
                        "a port number (0-65535)");
                case "--ring-dir" -> ringDirectory = Path.of(value(args, ++i, arg));
                case "--unix-socket" -> unixSocket = true;
                case "--unix-socket-path" -> {
                    socketPath = Path.of(value(args, ++i, arg));
                    unixSocket = true;
                }
                case CompatSegments.OPTION -> {
                    try {
                        compatSegments = CompatSegments.fromJson(value(args, ++i, arg));
                    } catch (IllegalArgumentException e) {
                        fail(e.getMessage());
                    }
                }
                case WorkerLaunch.PARENT_PID_OPTION -> ParentWatch.exitWhenGone(
                        parseNumber(arg, value(args, ++i, arg), 1, Long.MAX_VALUE, "a process id"));
                case "-h", "--help" -> {
                    System.out.println("usage: worker [--host HOST] [--port PORT | --unix-socket | --unix-socket-path PATH] "
                            + "[--ring-dir DIR] "
                            + "[--compat-segments JSON] [--parent-pid PID]");
                    return;
                }
                default -> fail("unknown argument '" + arg + "'");
            }
        }
        WorkerServer server;
        try {
            server = unixSocket ? WorkerServer.startOnUnixSocket(ringDirectory, socketPath, compatSegments)
                    : WorkerServer.start(host, port, ringDirectory, compatSegments);
        } catch (java.io.IOException | RuntimeException e) {
            fail("cannot listen on " + (socketPath != null ? "unix:" + socketPath
                    : unixSocket ? "a Unix domain socket in " + ringDirectory : host + ":" + port)
                    + ": " + e.getMessage());
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                server.close();
            } catch (Exception e) {
                System.err.println("flink-bridge worker: shutdown failed: " + e);
            }
        }, "worker-shutdown"));
        // SIGTERM is a request to stop (an upgrade, a TaskManager releasing the worker): sessions end as stopped,
        // which their bridges tell from a failure. Any other end (the spawner gone, SIGINT) is not that.
        sun.misc.Signal.handle(new sun.misc.Signal("TERM"), signal -> {
            try {
                server.stopAsAsked();
            } catch (Exception e) {
                System.err.println("flink-bridge worker: stopping failed: " + e);
            }
            System.exit(0);
        });
        System.out.println(WorkerLaunch.LISTENING_PREFIX + server.address());
        System.out.flush();
        StepOutput.install();
        server.awaitTermination();
    }

    private static String value(String[] args, int index, String option) {
        if (index >= args.length) {
            fail(option + " needs a value");
        }
        return args[index];
    }

    /** {@code text} as a number from {@code min} to {@code max}, or the worker ends naming the option. */
    private static long parseNumber(String option, String text, long min, long max, String what) {
        try {
            long number = Long.parseLong(text);
            if (number >= min && number <= max) {
                return number;
            }
        } catch (NumberFormatException ignored) {
            // reported below with the offending text
        }
        fail(option + " '" + text + "' is not " + what);
        return -1;
    }

    private static void fail(String message) {
        System.err.println("flink-bridge worker: " + message);
        System.exit(2);
    }
}
