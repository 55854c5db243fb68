package org.flinkbridge.runner;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.api.connector.source.lib.NumberSequenceSource;
import org.apache.flink.api.connector.source.util.ratelimit.RateLimiter;
import org.apache.flink.connector.datagen.source.DataGeneratorSource;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.function.BridgeFunction;
import org.flinkbridge.bridge.function.BridgeStreams;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The worker's answers reach Flink while the source has nothing more to give: the source emits a few
 * records and then waits (as a quiet Kafka partition would), with no watermark or checkpoint to call the
 * bridge function again. Every answer must still arrive before the source goes on; before answers were taken
 * from the task's mailbox, the last ones waited for the next input.
 */
class AnswersWhileIdleTest {

    private static final int BEFORE_PAUSE = 5;
    private static final ConcurrentLinkedQueue<String> RECEIVED = new ConcurrentLinkedQueue<>();
    /** Completed by the test to let the source emit its last record and end. */
    private static volatile CompletableFuture<Void> resume;

    private static Process worker;
    private static String workerAddress;

    @BeforeAll
    static void startWorker() throws Exception {
        worker = TestPeers.startWorker();
        workerAddress = TestPeers.workerAddress(worker);
    }

    @AfterAll
    static void stopWorker() {
        worker.destroy();
    }

    @ParameterizedTest
    @EnumSource(value = TransportMode.class, names = {"SHM", "GRPC_STREAM"})
    void answersArriveWhileTheSourceWaits(TransportMode mode) throws Exception {
        RECEIVED.clear();
        resume = new CompletableFuture<>();
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        DataGeneratorSource<BridgeRecord> source = new DataGeneratorSource<>(
                index -> BridgeRecord.ofUtf8("{\"n\":" + index + "}", index), BEFORE_PAUSE + 1,
                parallelism -> new PausingLimiter(), TypeInformation.of(BridgeRecord.class));
        BridgeStreams.process(env.fromSource(DataStreamV2SourceUtils.wrapSource(source), "paused source")
                                .withParallelism(1),
                        new BridgeFunction(sessionSpec(mode), false, false, false))
                .withParallelism(1)
                .toSink(DataStreamV2SinkUtils.wrapSink(new CollectingSink())).withParallelism(1);
        CompletableFuture<Void> job = CompletableFuture.runAsync(() -> {
            try {
                env.execute("answers while idle " + mode);
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }, runs -> Thread.ofPlatform().daemon().name("answers-while-idle job").start(runs));
        try {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (RECEIVED.size() < BEFORE_PAUSE && !job.isDone() && System.nanoTime() < deadline) {
                Thread.sleep(20);
            }
            assertEquals(BEFORE_PAUSE, RECEIVED.size(), "answers that reached the sink while the source waited: "
                    + RECEIVED + (job.isDone() ? " (the job ended: " + job.handle((v, e) -> e).join() + ")" : ""));
        } finally {
            resume.complete(null);
        }
        job.get(60, TimeUnit.SECONDS);
        assertEquals(BEFORE_PAUSE + 1, RECEIVED.size(), RECEIVED.toString());
        assertTrue(RECEIVED.stream().allMatch(line -> line.contains("\"processed\":true")), RECEIVED.toString());
    }

    private static SessionSpec sessionSpec(TransportMode mode) throws Exception {
        return new SessionSpec("answers-while-idle", 0, "add_processed",
                List.of(new SessionSpec.Step("add_processed", "append_field",
                        "{\"field\":\"processed\",\"value\":true}")),
                mode, workerAddress, BridgeOptions.ALLOW_PLAINTEXT_REMOTE.defaultValue(), List.of(),
                BridgeSettings.DEFAULT_MAX_IN_FLIGHT,
                BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS, BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(),
                // The sidecar worker opens rings in its default directory only, the bridge's default too.
                SessionSpec.ShmSettings.defaults(), SessionSpec.Recovery.defaults(),
                BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes());
    }

    /** Lets {@link #BEFORE_PAUSE} records through at once, then holds the next until the test resumes it. */
    private static final class PausingLimiter implements RateLimiter<NumberSequenceSource.NumberSequenceSplit> {
        private int granted;

        @Override
        public CompletionStage<Void> acquire(int permits) {
            granted += permits;
            return granted <= BEFORE_PAUSE ? CompletableFuture.completedFuture(null) : resume;
        }
    }

    /** Keeps what reaches it, for the test to see while the job runs. */
    private static final class CollectingSink implements Sink<BridgeRecord> {
        @Override
        public SinkWriter<BridgeRecord> createWriter(WriterInitContext context) {
            return new SinkWriter<>() {
                @Override
                public void write(BridgeRecord record, Context context) {
                    RECEIVED.add(record.payloadAsString());
                }

                @Override
                public void flush(boolean endOfInput) {}

                @Override
                public void close() {}
            };
        }
    }
}
