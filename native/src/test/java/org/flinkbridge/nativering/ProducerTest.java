package org.flinkbridge.nativering;

import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;

import static org.flinkbridge.nativering.NativePeer.PATIENCE;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The C producer (fb_produce) writing the from-worker ring, the Java consumer reading it. */
class ProducerTest {

    private static final String TOKEN = "0123456789abcdef";
    private static final int CAPACITY = 4096;
    /** A heartbeat silence that marks the peer lost: several of its 100 ms beats missed. */
    private static final long SILENCE_LIMIT_MILLIS = 500;
    /** How a process killed by SIGKILL reports its end to Java. */
    private static final int KILLED = 128 + 9;

    @TempDir
    Path dir;

    /** Frame i as fb_produce writes it: payload i % 300 bytes unless a body size is given. */
    static byte[] payload(long i, int length) {
        byte[] bytes = new byte[length];
        for (int b = 0; b < length; b++) {
            bytes[b] = (byte) (i * 31 + b);
        }
        return bytes;
    }

    /** Checks each frame is the next one fb_produce writes, whole; keeps their sequences. */
    private static final class FrameChecker implements FrameHandler {

        final List<Long> sequences = new ArrayList<>();
        final FramePlacement placement = new FramePlacement(CAPACITY);

        @Override
        public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length) throws IOException {
            placement.place(RingLayout.FRAME_HEADER + length);
            long i = sequences.size();
            assertEquals(FrameType.name(FrameType.OUTPUT), FrameType.name(type), "the type of frame " + i);
            assertEquals(i, sequence, "the sequence of frame " + i);
            Decoded record = Decoded.read(file, offset, length);
            assertEquals(1000 + i, record.timestamp(), "the timestamp of frame " + i);
            assertEquals(Map.of("i", Long.toString(i)), record.headers(), "the headers of frame " + i);
            assertArrayEquals(payload(i, (int) (i % 300)), record.payload(), "the payload of frame " + i);
            sequences.add(sequence);
        }
    }

    /** A ring the test makes as the bridge would, in its folder, for fb_produce to write. */
    private RingFile ring(String name) throws IOException {
        return RingFile.create(dir.resolve("rings").resolve(name + ".ring"), CAPACITY, CAPACITY, TOKEN);
    }

    /** fb_produce writing {@code frames} frames into {@code ring}'s from-worker ring, with {@code options}. */
    private NativePeer produce(RingFile ring, int frames, String... options) throws IOException {
        List<String> arguments = new ArrayList<>(List.of(ring.path().toString(), TOKEN, Integer.toString(frames)));
        arguments.addAll(List.of(options));
        return NativePeer.start(dir, "fb_produce", arguments.toArray(String[]::new));
    }

    @Test
    void everyFrameArrivesWholeWhileTheRingWraps() throws Exception {
        int count = 20_000;
        try (RingFile bridge = ring("produce"); NativePeer producer = produce(bridge, count)) {
            RingConsumer consumer = bridge.fromWorkerConsumer();
            FrameChecker frames = new FrameChecker();
            producer.receive(consumer, frames, () -> frames.sequences.size() == count, "production");

            assertEquals(0, producer.awaitExit(PATIENCE), "the producer exits 0 once everything was consumed; stderr: "
                    + producer.stderr());
            assertFalse(consumer.hasFrames(), "the producer wrote more than " + count + " frames");
            assertTrue(frames.placement.wraps() > 500, "the ring wrapped " + frames.placement.wraps() + " times");
            assertTrue(frames.placement.eightByteGaps() > 0, "the ring met an 8-byte gap at its end");
        }
    }

    @Test
    void aFrameLargerThanHalfTheRingIsRefusedNamingTheSizes() throws Exception {
        int bodySize = 5000;
        try (RingFile bridge = ring("large");
             NativePeer producer = produce(bridge, 1, "--body-size", Integer.toString(bodySize))) {
            assertEquals(4, producer.awaitExit(PATIENCE), "the producer's exit status on a frame too large; stderr: "
                    + producer.stderr());
            int frame = RingLayout.FRAME_HEADER + RecordCodec.bodyLength(Map.of("i", "0"), new byte[bodySize]);
            assertEquals("fb_produce: " + bridge.path() + " (from-worker ring): a OUTPUT frame of " + frame
                    + " bytes does not fit: frames are at most 2048 bytes, half the ring's capacity of 4096; "
                    + "give the session larger rings\n", producer.stderr());
            assertFalse(bridge.fromWorkerConsumer().hasFrames(), "nothing was published");
        }
    }

    @Test
    void aProducerDyingMidFrameLeavesOnlyWholeFramesAndIsSeenGone() throws Exception {
        int dieAfter = 100;
        try (RingFile bridge = ring("die");
             NativePeer producer = produce(bridge, 1000, "--die-after", Integer.toString(dieAfter))) {
            RingConsumer consumer = bridge.fromWorkerConsumer();
            FrameChecker frames = new FrameChecker();
            producer.receive(consumer, frames, () -> !producer.isAlive() && !consumer.hasFrames(), "a dying production");

            assertEquals(KILLED, producer.awaitExit(PATIENCE), "the producer kills itself; stderr: "
                    + producer.stderr());
            assertEquals(LongStream.range(0, dieAfter).boxed().toList(), frames.sequences,
                    "exactly the published frames arrived, not the torn one");
            assertEquals(0, consumer.poll((type, flags, sequence, file, offset, length) -> fail("a torn frame arrived"), 1));
            // Its heartbeat falls silent: that, not its pid, is how a peer is found lost.
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            String lost;
            while ((lost = bridge.peerLost(SILENCE_LIMIT_MILLIS)) == null && System.nanoTime() < deadline) {
                Thread.sleep(10);
            }
            assertTrue(lost != null && lost.startsWith("no heartbeat from the worker for "),
                    "the bridge sees the dead producer within " + PATIENCE + ": " + lost);
        }
    }
}
