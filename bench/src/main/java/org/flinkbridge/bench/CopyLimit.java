package org.flinkbridge.bench;

import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * The ceiling for any transport that copies a record into shared memory: one thread copying a payload
 * from a heap array into off-heap memory, as the shm channel writes a record into its ring.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
public class CopyLimit extends PayloadSizes {

    private byte[] payload;
    private Arena arena;
    private MemorySegment target;

    @Setup(Level.Trial)
    public void allocate() {
        payload = new byte[payloadBytes];
        new SplittableRandom(42).nextBytes(payload);
        arena = Arena.ofShared();
        target = arena.allocate(payloadBytes, Long.BYTES);
    }

    @TearDown(Level.Trial)
    public void free() {
        arena.close();
    }

    /** Copies one record's payload. */
    @Benchmark
    public MemorySegment copy() {
        MemorySegment.copy(payload, 0, target, ValueLayout.JAVA_BYTE, 0, payloadBytes);
        return target;
    }
}
