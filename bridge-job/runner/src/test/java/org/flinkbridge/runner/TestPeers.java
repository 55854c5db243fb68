package org.flinkbridge.runner;

import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import org.flinkbridge.bridge.JobCounters;
import org.flinkbridge.worker.WorkerMain;
import org.flinkbridge.worker.sdk.Step;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Comparator;
import java.util.Optional;
import java.util.Set;
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
        return startWorker(0);
    }

    /** A real worker process started on its own (sidecar mode), listening on loopback port {@code port}. */
    static Process startWorker(int port) throws IOException {
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-jar", TestPipelines.workerJar(), "--port",
                Integer.toString(port))
                // Its log (standard error) goes to the test's output, so nothing waits for a reader.
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    /**
     * A Java worker started on its own (sidecar mode), listening on a free loopback port, with the classes of
     * {@code step} (a user step) on its classpath, its log (standard error) going to {@code log}.
     */
    static Process startWorker(Class<? extends Step> step, ProcessBuilder.Redirect log) throws Exception {
        Path steps = Path.of(step.getProtectionDomain().getCodeSource().getLocation().toURI());
        return new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", TestPipelines.workerJar() + File.pathSeparator + steps,
                WorkerMain.class.getName(), "--port", "0").redirectError(log).start();
    }

    /** The Python worker started on its own (sidecar mode), listening on a free loopback port. */
    static Process startPythonWorker() throws IOException {
        return new ProcessBuilder(System.getProperty("flink-bridge.worker.python.executable"),
                System.getProperty("flink-bridge.worker.python.runtime"), "--port", "0")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
    }

    /**
     * The Python worker started on its own (sidecar mode), listening on a free loopback port, running the segments
     * of the modules in {@code pythonPath}, its log (standard error) going to {@code log}.
     */
    static Process startPythonWorker(Path pythonPath, ProcessBuilder.Redirect log) throws IOException {
        return new ProcessBuilder(System.getProperty("flink-bridge.worker.python.executable"),
                System.getProperty("flink-bridge.worker.python.runtime"), "--port", "0", "--path",
                pythonPath.toString()).redirectError(log).start();
    }

    /**
     * The Rust worker started on its own (sidecar mode), listening on a free loopback port, hosting the Python
     * segments of the modules in {@code pythonPath}.
     */
    static Process startRustWorker(Path pythonPath) throws IOException {
        return startRustWorker(pythonPath, ProcessBuilder.Redirect.INHERIT);
    }

    /** The same, its log (standard error) going to {@code log}. */
    static Process startRustWorker(Path pythonPath, ProcessBuilder.Redirect log) throws IOException {
        return new ProcessBuilder(TestPipelines.RUST_WORKER, "--port", "0", "--python-runtime",
                System.getProperty("flink-bridge.worker.python.runtime"), "--path", pythonPath.toString())
                .redirectError(log).start();
    }

    /** The HOST:PORT (or unix:PATH) a worker listens on, from the line that says so on its standard output. */
    static String workerAddress(Process worker) throws IOException {
        BufferedReader output = new BufferedReader(new InputStreamReader(worker.getInputStream(), StandardCharsets.UTF_8));
        StringBuilder before = new StringBuilder();
        String line;
        while ((line = output.readLine()) != null) {
            if (line.startsWith("flink-bridge worker listening on 127.0.0.1:")
                    || line.startsWith("flink-bridge worker listening on unix:")) {
                return line.substring(line.lastIndexOf(' ') + 1);
            }
            before.append(line).append('\n');
        }
        throw new AssertionError("the worker did not report its address; it printed:\n" + before);
    }

    /** A worker process this JVM spawned for a job, if one runs. */
    static Optional<ProcessHandle> spawnedWorker() {
        return spawned(TestPipelines.workerJar());
    }

    /**
     * The oldest process this JVM spawned (or one of its descendants) for the job last run in the background
     * whose command line contains {@code marker}: the worker serving that job, not the standby started after
     * it, nor one an earlier job spawned that is still on its way out.
     */
    static Optional<ProcessHandle> spawned(String marker) {
        Set<Long> earlier = TestPipelines.earlierProcesses();
        return ProcessHandle.current().descendants()
                .filter(p -> p.info().commandLine().orElse("").contains(marker))
                .filter(p -> !earlier.contains(p.pid()))
                .min(Comparator.comparing(p -> p.info().startInstant().orElse(Instant.MAX)));
    }

    /**
     * What marks the process a fault strikes in a spawned worker of {@code worker} (java, python or rust) on its
     * command line: the Java worker's jar, a Python session's process (one per session), the Rust binary.
     */
    static String faultTarget(String worker) {
        return switch (worker) {
            case "python" -> "flink_bridge.session_process";
            case "rust" -> TestPipelines.RUST_WORKER;
            default -> TestPipelines.workerJar();
        };
    }

    /** The spawned worker, once the job has sent it more than {@code records} records; fails if the job ends first. */
    static ProcessHandle awaitSpawnedWorker(long records, RunningJob run) throws Exception {
        return awaitSpawned(TestPipelines.workerJar(), records, run);
    }

    /**
     * A spawned process whose command line contains {@code marker}, once the job has sent more than
     * {@code records} records; fails if the job ends first.
     */
    static ProcessHandle awaitSpawned(String marker, long records, RunningJob run) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (System.nanoTime() < deadline) {
            if (run.isDone()) {
                throw new AssertionError("the job ended before its worker was past " + records + " records: "
                        + run.get());
            }
            Optional<ProcessHandle> process = spawned(marker);
            if (process.isPresent() && run.count(JobCounters.Count.SENT) > records) {
                return process.get();
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no spawned " + marker + " past " + records + " records within 60 s");
    }

    /** Sends {@code signal} (KILL, TERM, STOP...) to {@code process}. */
    static void signal(ProcessHandle process, String signal) throws Exception {
        new ProcessBuilder("kill", "-" + signal, Long.toString(process.pid())).start().waitFor();
    }

    /** A loopback port nothing listens on (bound, then released). */
    static int closedPort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
