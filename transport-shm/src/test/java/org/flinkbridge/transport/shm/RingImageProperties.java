package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.CorruptRecordException;
import org.flinkbridge.protocol.FrameType;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.constraints.StringLength;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.Map;
import org.flinkbridge.protocol.RecordCodec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Properties of what a ring carries: every record round-trips through its codec, and any ring image (positions
 * and bytes a peer may have written) is read frame by frame or refused with a {@link RingException}, never
 * with an exception the reader did not mean, such as an out-of-bounds access.
 */
class RingImageProperties {

    private static final int CAPACITY = 4096;
    private static final long CONTROL = 0;
    private static final long DATA = 256;

    @Property(tries = 2_000)
    void everyRecordRoundTrips(@ForAll long timestamp,
                               @ForAll @Size(max = 8) Map<@StringLength(max = 40) String, @StringLength(max = 200) String> headers,
                               @ForAll @Size(max = 2_000) byte[] payload) throws CorruptRecordException {
        int length = RecordCodec.bodyLength(headers, payload);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment body = arena.allocate(length + 16L);
            RecordCodec.write(body, 8, timestamp, headers, payload);

            Object[] read = RecordCodec.read(body, 8, length, (ts, hs, bytes) -> new Object[] {ts, hs, bytes});

            assertEquals(timestamp, read[0]);
            assertEquals(headers, read[1]);
            assertArrayEquals(payload, (byte[]) read[2]);
        }
    }

    @Property(tries = 5_000)
    void anyRingImageIsReadOrRefusedWithARingException(@ForAll("positions") long producer,
                                                          @ForAll("positions") long consumer,
                                                          @ForAll("ringBytes") byte[] data) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment file = arena.allocate(DATA + CAPACITY);
            file.set(ValueLayout.JAVA_LONG, CONTROL + RingLayout.PRODUCER_POSITION, producer);
            file.set(ValueLayout.JAVA_LONG, CONTROL + RingLayout.CONSUMER_POSITION, consumer);
            MemorySegment.copy(data, 0, file, ValueLayout.JAVA_BYTE, DATA, data.length);
            RingConsumer consumer0 = new RingConsumer(file, CONTROL, DATA, CAPACITY, new WaitStrategy(0), "ring");
            try {
                for (int polls = 0; polls < 4 && consumer0.poll(RingImageProperties::decodeEveryBody, 64) > 0; polls++) {
                    // read on: each poll reads up to 64 frames
                }
            } catch (RingException refused) {
                // a refusal naming the fault is what a corrupt image must give
            } catch (Exception unexpected) {
                throw new AssertionError("a ring image gave " + unexpected + " instead of a RingException"
                        + " (producer " + producer + ", consumer " + consumer + ", data " + Arrays.toString(
                        Arrays.copyOf(data, 64)) + "...)", unexpected);
            }
        }
    }

    /** Reads every record-carrying body, as the bridge and the worker do. */
    private static void decodeEveryBody(int type, int flags, long sequence, MemorySegment file, long offset, int length)
            throws CorruptRecordException {
        if (type == FrameType.RECORD || type == FrameType.OUTPUT) {
            RecordCodec.read(file, offset, length, (ts, headers, payload) -> payload);
        } else if (type == FrameType.WATERMARK || type == FrameType.BARRIER) {
            file.get(ValueLayout.JAVA_LONG_UNALIGNED, offset);
        } else {
            file.asSlice(offset, length).toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /** Positions around the ring's boundaries, aligned or not, and any long. */
    @Provide
    Arbitrary<Long> positions() {
        return Arbitraries.oneOf(
                Arbitraries.longs().between(-16, 3 * CAPACITY),
                Arbitraries.of(0L, 8L, 4088L, 4095L, 4096L, 4104L, 8192L, Long.MAX_VALUE, Long.MAX_VALUE - 7,
                        Long.MAX_VALUE - 15, Long.MIN_VALUE, -8L),
                Arbitraries.longs());
    }

    /** Frames that are mostly well formed, with bytes flipped: most images then get past the first check. */
    @Provide
    Arbitrary<byte[]> ringBytes() {
        Arbitrary<byte[]> wellFormed = Arbitraries.integers().between(0, 40).flatMap(records ->
                Arbitraries.bytes().array(byte[].class).ofMaxSize(64).list().ofSize(records).map(payloads -> {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment ring = arena.allocate(CAPACITY);
                        long at = 0;
                        for (byte[] payload : payloads) {
                            int body = RecordCodec.bodyLength(Map.of("k", "v"), payload);
                            int aligned = RingLayout.align(RingLayout.FRAME_HEADER + body);
                            if (at + aligned > CAPACITY) {
                                break;
                            }
                            ring.set(ValueLayout.JAVA_INT, at + RingLayout.FRAME_LENGTH, RingLayout.FRAME_HEADER + body);
                            ring.set(ValueLayout.JAVA_SHORT, at + RingLayout.FRAME_TYPE, (short) FrameType.RECORD);
                            RecordCodec.write(ring, at + RingLayout.FRAME_HEADER, 1, Map.of("k", "v"), payload);
                            at += aligned;
                        }
                        return ring.toArray(ValueLayout.JAVA_BYTE);
                    }
                }));
        return Arbitraries.oneOf(
                Arbitraries.bytes().array(byte[].class).ofSize(CAPACITY),
                wellFormed.flatMap(image -> Arbitraries.integers().between(0, CAPACITY - 1).list().ofMaxSize(8)
                        .flatMap(flips -> Arbitraries.bytes().list().ofSize(flips.size()).map(values -> {
                            byte[] flipped = image.clone();
                            for (int i = 0; i < flips.size(); i++) {
                                flipped[flips.get(i)] = values.get(i);
                            }
                            return flipped;
                        }))));
    }
}
