package org.flinkbridge.transport.shm;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.ShrinkingMode;
import net.jqwik.api.constraints.AlphaChars;
import net.jqwik.api.constraints.Size;
import net.jqwik.api.constraints.StringLength;
import org.flinkbridge.protocol.CorruptRecordException;
import org.flinkbridge.protocol.RecordCodec;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A record body lies in memory its peer can write while the codec reads it: whatever lengths the peer flips meanwhile,
 * a decode returns a record made of the body's own bytes or refuses it with a {@link CorruptRecordException}. It never
 * reads outside the body: the codec reads it from a larger mapping, as from a ring, filled around it with a sentinel
 * byte that no field of the body holds, so a read beyond the body shows as that byte in a returned field, or, past
 * the mapping, as an out-of-bounds access.
 */
class RecordBodyRaceTest {

    /** '~': the mapping around the body; kept out of the body's strings, payload and lengths, those flipped in too. */
    private static final byte SENTINEL = 0x7E;
    private static final long MAPPING_BYTES = 1 << 16;
    private static final long BODY_OFFSET = MAPPING_BYTES / 2;
    private static final int DECODES_PER_TRY = 20_000;

    private record Decoded(Map<String, String> headers, byte[] payload) {}

    // Shrinking would rerun a race, which a smaller sample need not lose again.
    @Property(tries = 60, shrinking = ShrinkingMode.OFF)
    void aDecodeWhileThePeerFlipsLengthsStaysInsideTheBody(
            @ForAll long timestamp,
            @ForAll @Size(min = 1, max = 6) Map<@AlphaChars @StringLength(max = 40) String,
                    @AlphaChars @StringLength(max = 40) String> headers,
            @ForAll("payloads") byte[] payload,
            @ForAll("flippedLengths") List<Integer> flippedLengths) throws InterruptedException {
        int length = RecordCodec.bodyLength(headers, payload);
        try (Arena arena = Arena.ofShared()) {
            MemorySegment mapping = arena.allocate(MAPPING_BYTES).fill(SENTINEL);
            RecordCodec.write(mapping, BODY_OFFSET, timestamp, headers, payload);
            List<Long> lengthFields = lengthFields(mapping, headers.size());

            AtomicBoolean stop = new AtomicBoolean();
            Thread peer = new Thread(() -> flipLengths(mapping, lengthFields, flippedLengths, stop), "flipping peer");
            peer.start();
            try {
                for (int i = 0; i < DECODES_PER_TRY; i++) {
                    decodeOnce(mapping, length, flippedLengths);
                }
            } finally {
                stop.set(true);
                peer.join();
            }
        }
    }

    private static void decodeOnce(MemorySegment mapping, int length, List<Integer> flippedLengths) {
        Decoded decoded;
        try {
            decoded = RecordCodec.read(mapping, BODY_OFFSET, length, (ts, headers, payload) -> new Decoded(headers, payload));
        } catch (CorruptRecordException refused) {
            return;
        } catch (RuntimeException unexpected) {
            throw new AssertionError("decoding a " + length + "-byte body while its lengths flip to " + flippedLengths
                    + " gave " + unexpected + " instead of a record or a CorruptRecordException", unexpected);
        }
        long fieldBytes = 8 + 4 + 4 + decoded.payload().length;
        for (Map.Entry<String, String> header : decoded.headers().entrySet()) {
            requireInsideBody(header.getKey(), flippedLengths);
            requireInsideBody(header.getValue(), flippedLengths);
            // A decoded string has at most one char per byte it was decoded from.
            fieldBytes += 8 + header.getKey().length() + header.getValue().length();
        }
        for (byte b : decoded.payload()) {
            if (b == SENTINEL) {
                throw new AssertionError("a payload decoded while lengths flip to " + flippedLengths
                        + " holds bytes from outside the body");
            }
        }
        if (fieldBytes > length) {
            throw new AssertionError("a record decoded while lengths flip to " + flippedLengths + " has " + fieldBytes
                    + " bytes of fields, more than its " + length + "-byte body");
        }
    }

    private static void requireInsideBody(String decoded, List<Integer> flippedLengths) {
        if (decoded.indexOf(SENTINEL) >= 0) {
            throw new AssertionError("a header decoded while lengths flip to " + flippedLengths
                    + " holds bytes from outside the body: '" + decoded + "'");
        }
    }

    /** The offsets of the body's header and payload lengths, walked while the body is still as written. */
    private static List<Long> lengthFields(MemorySegment mapping, int headerCount) {
        List<Long> fields = new ArrayList<>();
        long at = BODY_OFFSET + 12;
        for (int i = 0; i < 2 * headerCount + 1; i++) {
            fields.add(at);
            at += 4 + mapping.get(ValueLayout.JAVA_INT_UNALIGNED, at);
        }
        return fields;
    }

    /** The peer: sets each length field to each flipped value and back, over and over. */
    private static void flipLengths(MemorySegment mapping, List<Long> lengthFields, List<Integer> flippedLengths,
                                    AtomicBoolean stop) {
        int[] written = lengthFields.stream().mapToInt(at -> mapping.get(ValueLayout.JAVA_INT_UNALIGNED, at)).toArray();
        while (!stop.get()) {
            for (int field = 0; field < written.length; field++) {
                long at = lengthFields.get(field);
                for (int flipped : flippedLengths) {
                    writeAndHold(mapping, at, flipped);
                    writeAndHold(mapping, at, written[field]);
                }
            }
        }
    }

    /** Fenced, so the compiler keeps every write, and held a moment, so the decoder may read it between its steps. */
    private static void writeAndHold(MemorySegment mapping, long at, int value) {
        mapping.set(ValueLayout.JAVA_INT_UNALIGNED, at, value);
        VarHandle.fullFence();
        for (int spin = 0; spin < 20; spin++) {
            Thread.onSpinWait();
        }
    }

    @Provide
    Arbitrary<byte[]> payloads() {
        return Arbitraries.bytes().filter(b -> b != SENTINEL).array(byte[].class).ofMaxSize(100);
    }

    /** Lengths a peer may write: any int (edge cases included) or one near a real length, none holding the sentinel. */
    @Provide
    Arbitrary<List<Integer>> flippedLengths() {
        return Arbitraries.oneOf(Arbitraries.integers(), Arbitraries.integers().between(-64, 256))
                .filter(RecordBodyRaceTest::holdsNoSentinelByte)
                .list().ofMinSize(1).ofMaxSize(4);
    }

    private static boolean holdsNoSentinelByte(int value) {
        for (int shift = 0; shift < 32; shift += 8) {
            if ((byte) (value >>> shift) == SENTINEL) {
                return false;
            }
        }
        return true;
    }
}
