package org.flinkbridge.bridge.function;

import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.configuration.ExecutionOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.streaming.api.graph.StreamGraph;
import org.apache.flink.streaming.api.graph.StreamNode;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.KeyKind;
import org.flinkbridge.pipeline.KeySpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.records.RecordKey;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The exchange into a keyed segment with a {@code batch} step, which closes by processing time, flushes after
 * {@code flink-bridge.processing-time.buffer-timeout} (10 ms by default), never later than the job's own buffer
 * timeout; any other segment's keeps Flink's (100 ms by default), as the job graph says.
 */
class ProcessingTimeFlushTest {

    private static final SessionSpec.Step BATCH = new SessionSpec.Step("batched", "batch", "{\"max_wait_ms\":500}");
    private static final SessionSpec.Step APPEND =
            new SessionSpec.Step("marked", "append_field", "{\"field\":\"a\",\"value\":1}");

    @Test
    void theExchangeIntoAKeyedBatchFlushesAfterTenMilliseconds() throws Exception {
        assertEquals(10, bufferTimeoutInto(BATCH, config -> { }));
    }

    @Test
    void theExchangeIntoAnyOtherKeyedSegmentKeepsFlinksBufferTimeout() throws Exception {
        assertEquals(100, bufferTimeoutInto(APPEND, config -> { }));
    }

    @Test
    void theOptionSetsItAndTheJobsOwnShorterBufferTimeoutWins() throws Exception {
        assertEquals(30, bufferTimeoutInto(BATCH, config -> config.set(BridgeOptions.PROCESSING_TIME_BUFFER_TIMEOUT,
                Duration.ofMillis(30))));
        assertEquals(0, bufferTimeoutInto(BATCH, config -> config.set(ExecutionOptions.BUFFER_TIMEOUT,
                Duration.ZERO)));
    }

    /** The buffer timeout of the one edge into a keyed segment of {@code step}, in the graph of a job so set up. */
    private static long bufferTimeoutInto(SessionSpec.Step step,
                                          Consumer<org.apache.flink.configuration.Configuration> setUp)
            throws Exception {
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        setUp.accept(((ExecutionEnvironmentImpl) env).getConfiguration());
        NonKeyedPartitionStream<BridgeRecord> records = env.fromSource(DataStreamV2SourceUtils.fromData(
                List.of(BridgeRecord.ofUtf8("{\"key\":\"a\"}", 0))), "source");
        BridgeStreams.process(records.keyBy(new RecordKey(new KeySpec(KeyKind.JSON_FIELD, "key"))), new BridgeFunction(
                new SessionSpec("flush", 0, step.name(), List.of(step), TransportMode.SHM, "127.0.0.1:1", false,
                        List.of(), BridgeSettings.DEFAULT_MAX_IN_FLIGHT, BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS,
                        BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(), SessionSpec.ShmSettings.defaults(),
                        SessionSpec.Recovery.defaults(), BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes()),
                true, false, false)).withName("segment");
        StreamGraph graph = ((ExecutionEnvironmentImpl) env).getStreamGraph();
        StreamNode segment = graph.getStreamNodes().stream().filter(node -> node.getOperatorName().equals("segment"))
                .findFirst().orElseThrow();
        assertEquals(1, segment.getInEdges().size());
        return segment.getInEdges().getFirst().getBufferTimeout();
    }
}
