package org.flinkbridge.bench;

import net.openhft.chronicle.bytes.Bytes;
import net.openhft.chronicle.queue.ChronicleQueue;
import net.openhft.chronicle.queue.ExcerptAppender;
import net.openhft.chronicle.queue.RollCycles;
import net.openhft.chronicle.wire.DocumentContext;
import org.flinkbridge.bridge.journal.ReplayJournal;
import org.flinkbridge.protocol.KeyGroups;
import org.flinkbridge.records.BridgeRecord;
import org.flinkbridge.transport.shm.RingFiles;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * What recovery in place's journal costs per input, and what chronicle-queue (the design card's candidate)
 * costs for the same information: each input a 100-byte record appended, then its one output counted and
 * hashed and its end marked, and a barrier every {@value #BARRIER_EVERY} inputs, after which the journal starts
 * again. {@link ReplayJournal} (the bridge's own log on the FFM API) updates the entry in place and truncates
 * at the barrier. Chronicle's excerpts cannot change once written, so the answer is a second excerpt (sequence,
 * output count, hash), and it has no truncation: a barrier is only the index a replay would start from, and the
 * space goes with the roll cycle's file. Its queue lies in the ring directory's tmpfs as the journal would.
 * Single-threaded, as the task thread appends; the bridge's journal allocates nothing per input.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
// Chronicle's own list of what it needs opened on JDK 17 and later, and no analytics call home.
@Fork(jvmArgsAppend = {"--add-exports=java.base/jdk.internal.ref=ALL-UNNAMED",
        "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED", "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
        "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
        "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED", "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
        "--add-opens=java.base/java.io=ALL-UNNAMED", "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
        "-Dchronicle.analytics.disable=true"})
public class JournalAppend {

    static final int BARRIER_EVERY = 1_000;
    private static final int PAYLOAD_BYTES = 100;

    private ReplayJournal journal;
    private Path queueDirectory;
    private ChronicleQueue queue;
    private ExcerptAppender appender;
    private BridgeRecord input;
    private BridgeRecord output;
    private long sequence;
    private long barrierIndex;

    @Setup(Level.Trial)
    public void open() throws IOException {
        byte[] payload = new byte[PAYLOAD_BYTES];
        new SplittableRandom(13).nextBytes(payload);
        input = new BridgeRecord(payload, Map.of(), 1L);
        output = new BridgeRecord(payload, Map.of("key", "k"), 2L);
        journal = new ReplayJournal(32L << 20, 1024);
        queueDirectory = Files.createDirectories(RingFiles.defaultDirectory())
                .resolve("bench-journal-" + ProcessHandle.current().pid());
        queue = ChronicleQueue.singleBuilder(queueDirectory).rollCycle(RollCycles.FAST_HOURLY).build();
        appender = queue.createAppender();
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        journal.close();
        queue.close();
        Folders.deleteTree(queueDirectory);
    }

    @Benchmark
    @OperationsPerInvocation(BARRIER_EVERY)
    public int ownJournal() {
        for (int i = 0; i < BARRIER_EVERY; i++) {
            long input = sequence++;
            journal.appendRecord(input, KeyGroups.NONE, this.input);
            journal.outputReceived(input, output);
            journal.ended(input);
        }
        int entries = journal.entries();
        journal.truncate();
        return entries;
    }

    @Benchmark
    @OperationsPerInvocation(BARRIER_EVERY)
    public long chronicleQueue() {
        for (int i = 0; i < BARRIER_EVERY; i++) {
            long input = sequence++;
            try (DocumentContext entry = appender.writingDocument()) {
                Bytes<?> bytes = entry.wire().bytes();
                bytes.writeLong(input).writeInt(KeyGroups.NONE).writeLong(this.input.timestamp)
                        .writeInt(this.input.payload.length).write(this.input.payload);
            }
            try (DocumentContext answer = appender.writingDocument()) {
                answer.wire().bytes().writeLong(input).writeLong(1)
                        .writeLong(ReplayJournal.OutputHash.of(output));
            }
        }
        barrierIndex = appender.lastIndexAppended();
        return barrierIndex;
    }
}
