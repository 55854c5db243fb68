package org.flinkbridge.bench;

import org.flinkbridge.bridge.session.BridgeSession;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.bridge.session.WorkerChannel;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.SessionIdentity;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.records.BridgeRecord;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * Records through a transport to a worker process and back: the bridge sends each record, the worker's
 * echo segment returns it (or, with {@code -p step=json}, a JSON step adds a field to it), and the bridge takes
 * the answer. Driven as the bridge function drives its
 * channel (pipelined up to the default in-flight window, flushed when it would wait, polled without waiting
 * after each send), with the default session settings. The score is records per second.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class TransportRoundTrip extends PayloadSizes {

    /** Records in flight at most, as a bridge function allows by default. */
    static final int WINDOW = BridgeSettings.DEFAULT_MAX_IN_FLIGHT;
    /** Several windows per invocation, so the steady flow outweighs filling and draining the pipeline. */
    static final int RECORDS_PER_INVOCATION = 4 * WINDOW;

    @Param({"shm", "grpc", "compat"})
    public String transport;

    /**
     * The worker: {@code java} (the worker jar, with {@link EchoStep}), {@code python} (the Python worker in
     * workers/python/, with bench/src/main/python/bench_echo.py) or {@code rust} (workers/rust's binary, with its echo
     * step; shm and grpc only): {@code -p worker=java,python,rust}.
     */
    @Param({"java"})
    public String worker;

    /**
     * The step: {@code echo}, or {@code json}: a JSON object payload given a field, by the built-in append_field
     * on the Java worker and by the Python segment bench/src/main/python/bench_json.py on the Python worker and
     * hosted by the Rust worker (what hosts a Python step, measured without Flink): {@code -p step=echo,json}.
     */
    @Param({"echo"})
    public String step;

    /** What append_field adds to a payload: {@code ,"processed":true}. */
    private static final String ADDED_FIELD = ",\"processed\":true";

    private BridgeSession session;
    private WorkerChannel channel;
    private BridgeRecord record;
    private EchoCheck answers;
    private long timeoutNanos;
    private int outputBytes;

    @Setup(Level.Trial)
    public void open() throws IOException {
        TransportMode mode = switch (transport) {
            case "shm" -> TransportMode.SHM;
            case "grpc" -> TransportMode.GRPC_STREAM;
            case "compat" -> TransportMode.GRPC_COMPAT;
            default -> throw new IllegalArgumentException("unknown transport '" + transport
                    + "': use shm, grpc or compat");
        };
        boolean json = switch (step) {
            case "echo" -> false;
            case "json" -> true;
            default -> throw new IllegalArgumentException("unknown step '" + step + "': use echo or json");
        };
        List<String> workerCommand;
        SessionSpec.Step steps;
        if (worker.equals("python")) {
            workerCommand = BenchWorker.pythonCommand(mode == TransportMode.GRPC_COMPAT);
            steps = json ? BenchWorker.PYTHON_JSON_STEP
                    : new SessionSpec.Step("echo", BenchWorker.PYTHON_ECHO_TYPE, "{}");
        } else if (worker.equals("rust")) {
            if (mode == TransportMode.GRPC_COMPAT) {
                throw new IllegalArgumentException("the Rust worker does not serve the prototype's service: "
                        + "run it with -p transport=shm,grpc");
            }
            workerCommand = json ? BenchWorker.rustHostingPythonCommand() : BenchWorker.rustCommand();
            steps = json ? BenchWorker.PYTHON_JSON_STEP
                    : new SessionSpec.Step("echo", BenchWorker.RUST_ECHO_TYPE, "{}");
        } else {
            workerCommand = BenchWorker.command(mode == TransportMode.GRPC_COMPAT
                    ? BenchWorker.compatEcho(EchoStep.TYPE) : List.of());
            steps = json ? BenchWorker.APPEND_FIELD : new SessionSpec.Step("echo", EchoStep.TYPE, "{}");
        }
        // A session on its own, with no exchange to recover it: no standby worker process either.
        session = BridgeSession.open(BenchWorker.sessionSpec("transport-round-trip", steps, mode, workerCommand,
                        SessionSpec.Recovery.failover()),
                SessionIdentity.newBuilder()
                        .setJobName("transport-round-trip")
                        .setOperatorName("echo")
                        .setParallelism(1)
                        .build());
        channel = session.channel();
        timeoutNanos = TimeUnit.MILLISECONDS.toNanos(session.timeoutMillis());
        byte[] payload = json ? jsonPayload(payloadBytes) : randomPayload(payloadBytes);
        outputBytes = payload.length + (json ? ADDED_FIELD.length() : 0);
        record = new BridgeRecord(payload, Map.of(), 0L);
        answers = new EchoCheck();
    }

    private static byte[] randomPayload(int bytes) {
        byte[] payload = new byte[bytes];
        new SplittableRandom(42).nextBytes(payload);
        return payload;
    }

    /** A JSON object of {@code bytes} bytes (at least its fixed part), one string field padding it. */
    private static byte[] jsonPayload(int bytes) {
        String start = "{\"key\":\"key-7\",\"pad\":\"";
        return (start + "x".repeat(Math.max(0, bytes - start.length() - 2)) + "\"}").getBytes(StandardCharsets.UTF_8);
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        if (session != null) {
            session.close();
        }
    }

    @Benchmark
    @OperationsPerInvocation(RECORDS_PER_INVOCATION)
    public void roundTrip() throws IOException {
        for (int i = 0; i < RECORDS_PER_INVOCATION; i++) {
            if (answers.inFlight() == WINDOW) {
                awaitAnswers(WINDOW - 1);
            }
            channel.sendRecord(answers.nextSequence(), KeyGroups.NONE, null, record, answers);
            answers.sent();
            if (answers.inFlight() == 1) {
                // Nothing else is on its way: send now rather than wait for a batch to fill.
                channel.flush();
            }
            channel.poll(answers, 0);
        }
        awaitAnswers(0);
    }

    /** Flushes and takes answers until at most {@code remaining} records are unanswered. */
    private void awaitAnswers(int remaining) throws IOException {
        channel.flush();
        while (answers.inFlight() > remaining) {
            if (!channel.poll(answers, timeoutNanos)) {
                String exit = session.workerExitDescription();
                throw new IllegalStateException(session.name() + ": no answer to record #" + answers.oldest()
                        + " within " + session.timeoutMillis() + " ms" + (exit == null ? "" : ": " + exit));
            }
        }
    }

    /**
     * Checks every answer as it comes, so a broken transport fails the run instead of being measured:
     * each record gets exactly one output, of the payload's length, then its end marker, in send order.
     */
    private final class EchoCheck implements WorkerChannel.Answers {

        private long sent;
        private long answered;
        private boolean outputSeen;

        long nextSequence() {
            return sent;
        }

        void sent() {
            sent++;
        }

        long oldest() {
            return answered;
        }

        long inFlight() {
            return sent - answered;
        }

        @Override
        public void output(long sequence, BridgeRecord output) {
            expectOldest(sequence, "an output");
            if (outputSeen) {
                throw failure("a second output for record #" + sequence + ", which the echo step emits once");
            }
            if (output.payload.length != outputBytes) {
                throw failure("the output for record #" + sequence + " has " + output.payload.length
                        + " payload bytes instead of " + outputBytes);
            }
            outputSeen = true;
        }

        @Override
        public void endOfOutputs(long sequence) {
            expectOldest(sequence, "an end of outputs");
            if (!outputSeen) {
                throw failure("record #" + sequence + " ended without its echo");
            }
            outputSeen = false;
            answered++;
        }

        @Override
        public void error(long sequence, String message) {
            throw failure("the worker failed record #" + sequence + ": " + message);
        }

        /** The echo step has no dead letters: a failed input is a broken worker. */
        @Override
        public void inputFailed(long sequence, InputFailures.Failure failure) {
            throw failure("the worker answered record #" + sequence + " as failed: " + failure);
        }

        private void expectOldest(long sequence, String what) {
            if (sequence != answered || answered == sent) {
                throw failure("the worker sent " + what + " for record #" + sequence + " but the oldest unanswered "
                        + "record is " + (answered == sent ? "none" : "#" + answered));
            }
        }

        private IllegalStateException failure(String message) {
            return new IllegalStateException(session.name() + ": " + message);
        }
    }
}
