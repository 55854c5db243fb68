package org.flinkbridge.runner;

import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import org.flinkbridge.pipeline.PipelineException;
import org.flinkbridge.proto.control.BridgeControlGrpc;
import org.flinkbridge.proto.control.OpenSessionRequest;
import org.flinkbridge.proto.control.OpenSessionResponse;
import org.flinkbridge.proto.data.BridgeDataGrpc;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every way a worker can let the job down ends the job with one error naming the session and the cause:
 * unreachable, failing a record, killed, hung, or answering garbage; and a malformed pipeline file ends it
 * before it starts.
 */
class BridgeFailuresTest {

    private static String slowStream(long timeoutMs) {
        return slowStream(timeoutMs, "grpc");
    }

    private static String slowStream(long timeoutMs, String transport) {
        return """
                name: endless
                sources:
                  events: {type: generator, rate: 2000}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  out: {type: print}
                bridge: {transport: %s, worker_timeout_ms: %d, worker_recovery: failover}
                """.formatted(transport, timeoutMs);
    }

    @Test
    void unreachableWorker(@TempDir Path dir) throws Exception {
        Path pipeline = TestPipelines.write(dir, "p", slowStream(5_000));
        int port = TestPeers.closedPort();

        String message = failure(pipeline, "--worker-address", "127.0.0.1:" + port);

        assertTrue(message.contains("cannot open a session for segment 0 'main'"), message);
        assertTrue(message.contains("worker at 127.0.0.1:" + port), message);
        assertTrue(message.contains("UNAVAILABLE"), message);
    }

    @ParameterizedTest
    @ValueSource(strings = {"grpc", "shm"})
    void workerFailsARecord(String transport, @TempDir Path dir) throws Exception {
        Path input = Files.writeString(dir.resolve("input.txt"), "{\"ok\":1}\nnot json at all\n{\"ok\":2}\n");
        Path pipeline = TestPipelines.write(dir, "p", """
                name: bad-record
                sources:
                  lines: {type: file, path: %s}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  out: {type: print}
                bridge: {transport: %s}
                """.formatted(input, transport));

        String message = failure(pipeline);

        assertTrue(message.matches("(?s).*the worker failed input #\\d+: .*"), message);
        assertTrue(message.contains("session "), message);
        assertTrue(message.contains("add_processed"), message);
    }

    @ParameterizedTest
    @ValueSource(strings = {"grpc", "shm"})
    void workerKilled(String transport, @TempDir Path dir) throws Exception {
        Struck struck = strikeWorker(dir, 30_000, transport, "KILL");

        String message = struck.failure();
        assertTrue(message.contains("session ") && message.contains("pid " + struck.pid()), message);
        assertTrue(message.contains(transport.equals("shm") ? "the worker is gone: worker process " + struck.pid()
                + " exited with code 137" : "data stream failed"), message);
    }

    @Test
    void workerHangsOverShm(@TempDir Path dir) throws Exception {
        workerHangs("shm", dir);
    }

    /** The same over gRPC, in the long run (./flink-bridge test long). */
    @Tag("long")
    @Test
    void workerHangsOverGrpc(@TempDir Path dir) throws Exception {
        workerHangs("grpc", dir);
    }

    private static void workerHangs(String transport, Path dir) throws Exception {
        String message = strikeWorker(dir, 2_000, transport, "STOP").failure();

        assertTrue(message.contains("no answer to input #"), message);
        assertTrue(message.contains("within 2000 ms (the worker hangs or is unreachable)"), message);
    }

    @Test
    void silentWorkerOverShmIsLostAfterTheLivenessTimeout(@TempDir Path dir) throws Exception {
        Struck struck = strikeWorker(dir, 60_000, "shm", "STOP", "-Dflink-bridge.liveness-timeout=1s");

        String message = struck.failure();
        assertTrue(message.contains("session ") && message.contains("pid " + struck.pid()), message);
        assertTrue(message.contains("the worker is gone: no heartbeat from the worker for "), message);
        assertTrue(message.contains("ms (the limit is 1000 ms)"), message);
    }

    /** The failure a job ended with after its worker was struck, and the worker's pid. */
    private record Struck(String failure, long pid) {}

    /**
     * Runs a slow stream over {@code transport} whose inputs time out after {@code timeoutMs}, sends its spawned
     * worker {@code signal} (KILL, STOP) once past 100 records, and waits for the job to fail; the worker is killed
     * after.
     */
    private static Struck strikeWorker(Path dir, long timeoutMs, String transport, String signal, String... extra)
            throws Exception {
        RunningJob run = runInBackground(TestPipelines.write(dir, "p", slowStream(timeoutMs, transport)), extra);
        ProcessHandle worker = TestPeers.awaitSpawnedWorker(100, run);
        try {
            TestPeers.signal(worker, signal);
            return new Struck(failureOf(run), worker.pid());
        } finally {
            if (worker.isAlive()) {
                TestPeers.signal(worker, "KILL");
            }
        }
    }

    /** A peer that opens sessions but answers every batch with an output for an input never sent. */
    static final class GarbagePeer {
        final BridgeControlGrpc.BridgeControlImplBase control = new BridgeControlGrpc.BridgeControlImplBase() {
            @Override
            public void openSession(OpenSessionRequest request, StreamObserver<OpenSessionResponse> reply) {
                reply.onNext(OpenSessionResponse.newBuilder().setSessionId("garbage-1").build());
                reply.onCompleted();
            }
        };
        final BridgeDataGrpc.BridgeDataImplBase data = new BridgeDataGrpc.BridgeDataImplBase() {
            @Override
            public StreamObserver<FrameBatch> exchange(StreamObserver<FrameBatch> replies) {
                return new StreamObserver<>() {
                    @Override
                    public void onNext(FrameBatch batch) {
                        long sequence = batch.getFrames(0).getSequence() + 7;
                        replies.onNext(FrameBatch.newBuilder().addFrames(Frame.newBuilder()
                                .setType(FrameType.OUTPUT).setSequence(sequence)).build());
                    }

                    @Override
                    public void onError(Throwable t) {}

                    @Override
                    public void onCompleted() {
                        replies.onCompleted();
                    }
                };
            }
        };
    }

    @Test
    void workerAnswersGarbage(@TempDir Path dir) throws Exception {
        GarbagePeer peer = new GarbagePeer();
        Server server = TestPeers.start(peer.control, peer.data);
        try {
            Path pipeline = TestPipelines.write(dir, "p", slowStream(5_000));

            String message = failure(pipeline, "--worker-address", "127.0.0.1:" + server.getPort());

            assertTrue(message.contains("session garbage-1"), message);
            assertTrue(message.contains("for input #7 but the oldest unanswered input is #0 (a protocol violation)"),
                    message);
        } finally {
            TestPeers.stop(server);
        }
    }

    /**
     * With checkpointing on, Flink's default restarts a failing job forever, and the local runner printed
     * nothing meanwhile; it now allows a few restarts and then fails naming the cause.
     */
    @Test
    void aJobThatFailsOnEveryAttemptEndsNamingTheCauseInsteadOfRestartingForever(@TempDir Path dir) {
        Path pipeline = TestPipelines.write(dir, "p", """
                sources:
                  events: {type: generator, count: 1000, rate: 100}
                steps:
                  - {step_name: count, type: running_count, config: {key_json_field: missing}}
                sinks:
                  files: {type: file, path: unused}
                bridge:
                  checkpoint_interval_ms: 500
                """);

        Exception error = assertThrows(Exception.class,
                () -> LocalRunner.run(arguments(pipeline, "--output", dir.resolve("out").toString())));

        String message = LocalRunner.causeMessage(error);
        assertTrue(message.matches("(?s).*the worker failed input #\\d+: java.io.IOException: the record has no key to"
                + " count by.*"), message);
        assertTrue(TestPipelines.stackTrace(error).contains("maxNumberRestartAttempts=" + LocalRunner.RESTART_ATTEMPTS),
                "the restarts are bounded: " + TestPipelines.stackTrace(error));
    }

    @Test
    void malformedPipelineEndsBeforeTheJobStarts(@TempDir Path dir) {
        Path pipeline = TestPipelines.write(dir, "p", """
                sources:
                  events: {type: generator, count: ten}
                steps:
                  - {step_name: a, type: append_field}
                sinks:
                  out: {type: print}
                """);

        PipelineException error = assertThrows(PipelineException.class,
                () -> LocalRunner.run(new String[] {pipeline.toString()}));

        assertTrue(error.getMessage().startsWith(pipeline.toString() + ": sources.events.count"), error.getMessage());
        assertEquals(1, error.getMessage().lines().count());
    }

    private static String failure(Path pipeline, String... extra) {
        Exception error = assertThrows(Exception.class, () -> LocalRunner.run(arguments(pipeline, extra)));
        return LocalRunner.causeMessage(error);
    }

    private static RunningJob runInBackground(Path pipeline, String... extra) {
        return TestPipelines.runInBackground(arguments(pipeline, extra));
    }

    private static String[] arguments(Path pipeline, String... extra) {
        String[] args = new String[extra.length + 1];
        args[0] = pipeline.toString();
        System.arraycopy(extra, 0, args, 1, extra.length);
        return args;
    }

    private static String failureOf(CompletableFuture<String> run) throws Exception {
        try {
            String summary = run.get(120, TimeUnit.SECONDS);
            throw new AssertionError("the job did not fail: " + summary);
        } catch (java.util.concurrent.ExecutionException e) {
            return LocalRunner.causeMessage(e.getCause());
        }
    }
}
