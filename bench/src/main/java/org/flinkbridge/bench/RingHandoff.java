package org.flinkbridge.bench;

import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingFiles;
import org.flinkbridge.transport.shm.RingProducer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OperationsPerInvocation;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The ring alone, in one thread: a batch of records encoded into a session's ring, published once, then
 * polled and read in place. No process boundary and no Flink objects, so JMH's gc profiler shows what the
 * ring's own hot path allocates per record (nothing), apart from the objects a bridge makes for Flink.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class RingHandoff extends PayloadSizes {

    /** Records per publication, as the bridge publishes its inputs. */
    static final int BATCH = 64;
    private static final int RING_BYTES = 4 * 1024 * 1024;

    private RingFile bridge;
    private RingFile worker;
    private RingProducer producer;
    private RingConsumer consumer;
    private byte[] payload;
    private int bodyLength;
    private final Checksum checksum = new Checksum();

    @Setup(Level.Trial)
    public void open() throws IOException {
        Path ring = RingFiles.defaultDirectory().resolve("bench-handoff-" + ProcessHandle.current().pid() + ".ring");
        bridge = RingFile.create(ring, RING_BYTES, RING_BYTES, "ring-handoff-benchmark");
        worker = RingFile.attach(ring, "ring-handoff-benchmark");
        producer = bridge.toWorkerProducer();
        consumer = worker.toWorkerConsumer();
        payload = new byte[payloadBytes];
        new SplittableRandom(42).nextBytes(payload);
        bodyLength = RecordCodec.bodyLength(Map.of(), payload);
    }

    @TearDown(Level.Trial)
    public void close() throws IOException {
        worker.close();
        bridge.close();
    }

    @Benchmark
    @OperationsPerInvocation(BATCH)
    public long handOff() throws IOException {
        for (int i = 0; i < BATCH; i++) {
            long body = producer.tryClaim(FrameType.RECORD, i, bodyLength);
            if (body < 0) {
                throw new IllegalStateException("a ring of " + RING_BYTES + " bytes is full after " + i + " records");
            }
            RecordCodec.write(producer.segment(), body, i, Map.of(), payload);
        }
        producer.publish();
        int polled = 0;
        while (polled < BATCH) {
            polled += consumer.poll(checksum, BATCH);
        }
        return checksum.sum;
    }

    /** Reads each frame's last byte, so the consumer touches what it is handed without copying it out. */
    private static final class Checksum implements FrameHandler {
        long sum;

        @Override
        public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length) {
            sum += length + file.get(ValueLayout.JAVA_BYTE, offset + length - 1);
        }
    }
}
