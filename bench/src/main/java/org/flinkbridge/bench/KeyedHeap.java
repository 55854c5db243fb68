package org.flinkbridge.bench;

import org.apache.flink.api.connector.dsv2.DataStreamV2SinkUtils;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.api.context.PartitionedContext;
import org.apache.flink.datastream.api.function.OneInputStreamProcessFunction;
import org.apache.flink.datastream.api.stream.NonKeyedPartitionStream;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.job.io.Sources;
import org.flinkbridge.pipeline.GeneratorSourceSpec;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.records.BridgeRecord;

import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The heap a keyed segment's TaskManager holds against the number of distinct keys: the same number of records
 * through a keyed {@code append_field} (Java worker, shm), once over 10,000 keys and once with every record its
 * own key. Near the end of each run (95% of the records out of the step) the JVM, which runs the embedded
 * TaskManager, collects all garbage and the heap in use is read. Flink's DataStream V2 keyed operator keeps every
 * key it has seen in a heap set; the bridge's keeps none, so the two figures should be about equal.
 *
 * <p>Usage: {@code KeyedHeap RECORDS OUTPUT_DIR}; writes {@code keyed-heap.md} there.
 */
public final class KeyedHeap {

    private static final int FEW_KEYS = 10_000;
    /** Records out of the step, for the run in progress. */
    private static final AtomicLong OUT = new AtomicLong();

    private KeyedHeap() {}

    public static void main(String[] args) throws Exception {
        long records = Long.parseLong(args[0]);
        Path out = Path.of(args[1]);
        long few;
        long distinct;
        try (BenchCluster cluster = new BenchCluster()) {
            few = heapNearTheEnd(cluster, records, FEW_KEYS);
            distinct = heapNearTheEnd(cluster, records, Integer.MAX_VALUE);
        }
        String table = String.format(Locale.ROOT, """

                ## Keys and the TaskManager's heap

                %,d generated records through a keyed append_field (Java worker, shm, parallelism 1), the heap in use
                after a full collection once 95%% of them were out of the step:

                | distinct keys | heap in use (MiB) |
                | --- | --- |
                | %,d | %.0f |
                | about %,d | %.0f |

                Goal: the second no larger than the first (issue: a keyed segment's heap must not grow with the keys).
                """, records, FEW_KEYS, few / 1048576.0, records, distinct / 1048576.0);
        Files.writeString(out.resolve("keyed-heap.md"), table);
    }

    /** The heap in use after a full collection, near the end of a run over {@code keys} keys. */
    private static long heapNearTheEnd(BenchCluster cluster, long records, int keys) throws Exception {
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        NonKeyedPartitionStream<BridgeRecord> events = Sources.create(env,
                new GeneratorSourceSpec("events", records, 0, keys, 42)).withParallelism(1);
        SessionSpec spec = BenchWorker.sessionSpec("keyed-heap", BenchWorker.APPEND_FIELD, TransportMode.SHM,
                BenchWorker.command(List.of(), List.of()), SessionSpec.Recovery.failover());
        BenchCluster.keyedSegment(events, spec).process(new Count()).withParallelism(1)
                .toSink(DataStreamV2SinkUtils.wrapSink(new DiscardingSink<BridgeRecord>())).withParallelism(1);
        OUT.set(0);
        CompletableFuture<Void> run = cluster.end(cluster.submit(env));
        while (OUT.get() < records * 95 / 100) {
            if (run.isDone()) {
                run.join();
                throw new IllegalStateException("the run ended after " + OUT.get() + " of " + records + " records");
            }
            Thread.sleep(5);
        }
        System.gc();
        long used = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        run.join();
        return used;
    }

    /** Counts the records out of the step. */
    private static final class Count implements OneInputStreamProcessFunction<BridgeRecord, BridgeRecord> {
        @Override
        public void processRecord(BridgeRecord record, Collector<BridgeRecord> output,
                                  PartitionedContext<BridgeRecord> ctx) {
            OUT.incrementAndGet();
            output.collect(record);
        }
    }
}
