package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.connector.dsv2.DataStreamV2SourceUtils;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.core.memory.ManagedMemoryUseCase;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.apache.flink.runtime.jobgraph.JobVertex;
import org.apache.flink.runtime.memory.MemoryManager;
import org.apache.flink.streaming.api.graph.StreamConfig;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.asyncprocessing.AsyncKeyedOneInputStreamOperatorTestHarness;
import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A session's journal is counted in Flink's memory model as Flink's own operators' native memory is: the graph
 * declares the operator's use of managed memory, and the journal's bytes are reserved from the slot's memory
 * manager as it grows, within the operator's share, and released when it overflows and at close (through Flink's
 * operator harness, with a real Java worker). The harness's slot, 3 MiB, has the state backend's use of managed
 * memory as well as the operators' (as a job on RocksDB has), each of the fraction the operator's config gives:
 * with Flink's default consumer weights (OPERATOR:70, STATE_BACKEND:70) the operator's share is half of it.
 */
class JournalManagedMemoryTest {

    private static final int MAX_PARALLELISM = 128;
    private static final long SLOT = 3L << 20;
    @RegisterExtension
    static final JavaWorkerProcess WORKER = new JavaWorkerProcess();

    @Test
    void theJournalsMemoryIsReservedFromTheSlotAsItHoldsInputsAndGivenBackAtClose() throws Exception {
        OneInputStreamOperatorTestHarness<BridgeRecord, BridgeRecord> harness = new OneInputStreamOperatorTestHarness<>(
                new BridgeOperators.NonKeyed(new BridgeFunction(sessionSpec(SessionSpec.Recovery.defaults()), false,
                        false, false)), MAX_PARALLELISM, 1, 0);
        MemoryManager memory = harness.getEnvironment().getMemoryManager();
        assertEquals(SLOT, memory.getMemorySize());
        try (harness) {
            harness.open();
            assertEquals(SLOT, memory.availableMemory(), "reserved before any input");

            harness.processElement(record(100));
            assertEquals(SLOT - 64 * 1024, memory.availableMemory(), "the journal's first 64 KiB are not reserved");
        }
        assertEquals(SLOT, memory.availableMemory(), "still reserved after close");
    }

    @Test
    void theOperatorsShareOfTheSlotBoundsTheJournal() throws Exception {
        // A share of an eighth of the slot, 384 KiB (a quarter, halved with the state backend's), under the
        // journal's own 32 MiB.
        try (var harness = AsyncKeyedOneInputStreamOperatorTestHarness.<String, BridgeRecord, BridgeRecord>create(
                new BridgeOperators.Keyed<>(new BridgeFunction(sessionSpec(SessionSpec.Recovery.defaults()), true,
                        false, false)), record -> "k", Types.STRING, MAX_PARALLELISM, 1, 0)) {
            harness.getStreamConfig().setManagedMemoryFractionOperatorOfUseCase(ManagedMemoryUseCase.OPERATOR, 0.25);
            MemoryManager memory = harness.getEnvironment().getMemoryManager();
            harness.open();

            for (int i = 0; i < 20; i++) {
                harness.processElement(record(16 * 1024));
            }
            assertEquals(SLOT - SLOT / 8, memory.availableMemory(),
                    "20 inputs of 16 KiB: the journal did not grow to the share, and no further");
            for (int i = 0; i < 10; i++) {
                harness.processElement(record(16 * 1024));
            }
            assertEquals(SLOT, memory.availableMemory(), "a journal over the share still holds its memory");
        }
    }

    @Test
    void theGraphGivesEachSegmentWithAJournalAnEqualShareOfTheSlotsManagedMemoryForOperators() throws Exception {
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        NonKeyedPartitionStream<BridgeRecord> stream = env.fromSource(
                DataStreamV2SourceUtils.fromData(List.of(new BridgeRecord(new byte[0], Map.of(), 0))), "source");
        stream = BridgeStreams.process(stream, function("first", SessionSpec.Recovery.defaults())).withName("first");
        stream = BridgeStreams.process(stream, function("failover", SessionSpec.Recovery.failover()))
                .withName("failover");
        BridgeStreams.process(stream, function("last", SessionSpec.Recovery.defaults())).withName("last");

        Map<String, Double> fractions = new HashMap<>();
        ClassLoader classLoader = getClass().getClassLoader();
        for (JobVertex vertex : ((ExecutionEnvironmentImpl) env).getStreamGraph().getJobGraph().getVertices()) {
            for (StreamConfig config : new StreamConfig(vertex.getConfiguration())
                    .getTransitiveChainedTaskConfigsWithSelf(classLoader).values()) {
                fractions.put(config.getOperatorName(), config.getManagedMemoryFractionOperatorUseCaseOfSlot(
                        ManagedMemoryUseCase.OPERATOR, new Configuration(), new Configuration(), classLoader));
            }
        }
        assertTrue(fractions.get("first") > 0, "no managed memory for a segment's journal: " + fractions);
        assertEquals(fractions.get("first"), fractions.get("last"), "segments' shares differ: " + fractions);
        assertEquals(0.0, fractions.get("failover"), "managed memory for a segment without a journal: " + fractions);
    }

    private static BridgeFunction function(String segment, SessionSpec.Recovery recovery) {
        return new BridgeFunction(new SessionSpec("journal-memory", 0, segment, List.of(), TransportMode.GRPC_STREAM,
                "127.0.0.1:1", false, List.of(), BridgeSettings.DEFAULT_MAX_IN_FLIGHT,
                BridgeSettings.DEFAULT_WORKER_TIMEOUT_MS, BridgeOptions.GRPC_BATCH_FRAMES.defaultValue(),
                SessionSpec.ShmSettings.defaults(), recovery, BridgeOptions.MAX_SNAPSHOT_SIZE.defaultValue().getBytes()),
                false, false, false);
    }

    private static StreamRecord<BridgeRecord> record(int payloadBytes) {
        return new StreamRecord<>(new BridgeRecord(new byte[payloadBytes], Map.of(), 1), 1);
    }

    /** A segment that keeps no record (none has the header it filters on), so the journal is all that grows. */
    private static SessionSpec sessionSpec(SessionSpec.Recovery recovery) {
        return WORKER.sessionSpec("journal-memory",
                new SessionSpec.Step("drop", "filter", "{\"header\":\"keep\",\"equals\":\"yes\"}"), recovery);
    }
}
