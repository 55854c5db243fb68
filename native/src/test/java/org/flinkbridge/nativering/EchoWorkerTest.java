package org.flinkbridge.nativering;

import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.transport.shm.FrameHandler;
import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.transport.shm.RingConsumer;
import org.flinkbridge.transport.shm.RingFile;
import org.flinkbridge.transport.shm.RingLayout;
import org.flinkbridge.transport.shm.RingProducer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

import static org.flinkbridge.nativering.NativePeer.PATIENCE;
import static org.flinkbridge.nativering.NativePeer.WAIT_NANOS;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** The Java bridge side against the C echo worker (fb_echo_worker) over one ring file. */
class EchoWorkerTest {

    private static final String TOKEN = "0123456789abcdef";
    private static final int CAPACITY = 4096;
    private static final int INPUTS = 60_000;
    /** Inputs written but not yet answered with END_OF_OUTPUTS; the bridge bounds them the same way. */
    private static final int MAX_IN_FLIGHT = 256;

    @TempDir
    Path dir;

    /** Input i is mostly a record; every 7th a watermark and every 13th a barrier. */
    static int kind(int i) {
        return i % 7 == 3 ? FrameType.WATERMARK : i % 13 == 6 ? FrameType.BARRIER : FrameType.RECORD;
    }

    static Map<String, String> headers(int i) {
        return switch (i % 4) {
            case 0 -> Map.of();
            case 1 -> Map.of("k", "v" + i);
            case 2 -> Map.of("ü", "€" + i, "emoji", "😀");
            default -> Map.of("empty", "");
        };
    }

    /** 0 to 400 bytes, so frames of every 8-byte size class meet the ring's end. */
    static byte[] payload(int i) {
        byte[] bytes = new byte[Math.floorMod(i * 7919, 401)];
        for (int b = 0; b < bytes.length; b++) {
            bytes[b] = (byte) (i * 31 + b);
        }
        return bytes;
    }

    /** Every third record's stream is not keyed; the others carry a key group, up to the largest Flink has. */
    static int keyGroup(int i) {
        return i % 3 == 0 ? RingLayout.NO_KEY_GROUP : (i * 7919) % 32768;
    }

    /** What the C worker answers record i with: its headers, "echo", and the key group it read from the flags. */
    static Map<String, String> echoed(int i) {
        Map<String, String> headers = new HashMap<>(headers(i));
        headers.put("echo", "c");
        if (keyGroup(i) != RingLayout.NO_KEY_GROUP) {
            headers.put("key_group", Integer.toString(keyGroup(i)));
        }
        return headers;
    }

    static int bodyLength(int i) {
        return kind(i) == FrameType.RECORD ? RecordCodec.bodyLength(headers(i), payload(i)) : Long.BYTES;
    }

    /** Claims and writes input i; the ring must have room. */
    static void writeInput(RingProducer producer, long body, int i) {
        if (kind(i) == FrameType.RECORD) {
            RecordCodec.write(producer.segment(), body, 1000L + i, headers(i), payload(i));
        } else {
            producer.segment().set(ValueLayout.JAVA_LONG_UNALIGNED, body, i);
        }
    }

    @Test
    void everyInputIsAnsweredInOrderWhileBothRingsWrap() throws Exception {
        Path path = dir.resolve("rings").resolve("echo.ring");
        RingFile bridge = RingFile.create(path, CAPACITY, CAPACITY, TOKEN);
        boolean bridgeOpen = true;
        ExecutorService outputReader = Executors.newSingleThreadExecutor();
        try (NativePeer worker = NativePeer.start(dir, "fb_echo_worker", path.toString(), TOKEN)) {
            Semaphore inFlight = new Semaphore(MAX_IN_FLIGHT);
            AnswerChecker answers = new AnswerChecker(inFlight);
            RingConsumer outputs = bridge.fromWorkerConsumer();
            Future<?> reading = outputReader.submit(() -> {
                worker.receive(outputs, answers, () -> answers.next == INPUTS, "the echo exchange");
                return null;
            });
            FramePlacement inputs = writeInputs(bridge.toWorkerProducer(), worker, inFlight, reading);
            reading.get(2 * PATIENCE.toSeconds() + 60, TimeUnit.SECONDS);
            assertFalse(outputs.hasFrames(), "the worker answered more than it was asked");

            assertTrue(inputs.wraps() > 1000 && answers.placement.wraps() > 1000,
                    "both rings wrap many times: " + inputs.wraps() + " and " + answers.placement.wraps());
            assertTrue(inputs.eightByteGaps() > 0 && answers.placement.eightByteGaps() > 0,
                    "both rings met an 8-byte gap at their end: " + inputs.eightByteGaps() + " and "
                            + answers.placement.eightByteGaps() + " times");

            bridgeOpen = false;
            bridge.close();
            assertEquals(0, worker.awaitExit(PATIENCE), "the worker exits 0 once the bridge closed the ring; stderr: "
                    + worker.stderr());
        } finally {
            outputReader.shutdownNow();
            if (bridgeOpen) {
                bridge.close();
            }
        }
    }

    /** Writes every input, keeping at most MAX_IN_FLIGHT unanswered; returns where the frames went. */
    private static FramePlacement writeInputs(RingProducer producer, NativePeer worker, Semaphore inFlight,
                                              Future<?> reading) throws Exception {
        FramePlacement placement = new FramePlacement(CAPACITY);
        for (int i = 0; i < INPUTS; i++) {
            if (!inFlight.tryAcquire()) {
                producer.publish(); // the worker answers only what it can see
                if (!inFlight.tryAcquire(PATIENCE.toMillis(), TimeUnit.MILLISECONDS)) {
                    rethrowIfFailed(reading);
                    worker.assertRunning("the echo exchange");
                    fail("no input answered for " + PATIENCE + " with " + MAX_IN_FLIGHT + " in flight, at input " + i);
                }
            }
            int length = bodyLength(i);
            long body;
            long deadline = System.nanoTime() + PATIENCE.toNanos();
            int flags = kind(i) == FrameType.RECORD ? keyGroup(i) : 0;
            while ((body = producer.tryClaim(kind(i), flags, i, length)) < 0) {
                rethrowIfFailed(reading);
                worker.assertRunning("the echo exchange");
                if (System.nanoTime() > deadline) {
                    fail("the to-worker ring had no room for " + PATIENCE + " at input " + i);
                }
                producer.awaitSpace(WAIT_NANOS);
            }
            writeInput(producer, body, i);
            placement.place(RingLayout.FRAME_HEADER + length);
            if (i % 16 == 15) {
                producer.publish();
            }
        }
        producer.publish();
        return placement;
    }

    /** Surfaces the failure of the output reader (a wrong answer) instead of a timeout it causes. */
    private static void rethrowIfFailed(Future<?> task) throws Exception {
        if (task.isDone()) {
            try {
                task.get();
            } catch (ExecutionException e) {
                if (e.getCause() instanceof Error error) {
                    throw error;
                }
                throw (Exception) e.getCause();
            }
        }
    }

    /** Checks the answers in order: for input i its OUTPUT when it is a record, then its END_OF_OUTPUTS. */
    private static final class AnswerChecker implements FrameHandler {

        final FramePlacement placement = new FramePlacement(CAPACITY);
        private final Semaphore inFlight;
        /** The input being answered; read by the writing thread only after this one ends. */
        volatile int next;
        private boolean outputSeen;

        AnswerChecker(Semaphore inFlight) {
            this.inFlight = inFlight;
        }

        @Override
        public void onFrame(int type, int flags, long sequence, MemorySegment file, long offset, int length) throws IOException {
            placement.place(RingLayout.FRAME_HEADER + length);
            int input = next;
            assertEquals(input, sequence, "the sequence of an answer");
            assertEquals(0, flags, "the flags of an answer");
            if (kind(input) == FrameType.RECORD && !outputSeen) {
                assertEquals(FrameType.name(FrameType.OUTPUT), FrameType.name(type), "the first answer to input " + input);
                Decoded output = Decoded.read(file, offset, length);
                assertEquals(1000L + input, output.timestamp(), "the timestamp of output " + input);
                assertEquals(echoed(input), output.headers(), "the headers of output " + input);
                assertArrayEquals(payload(input), output.payload(), "the payload of output " + input);
                outputSeen = true;
            } else {
                assertEquals(FrameType.name(FrameType.END_OF_OUTPUTS), FrameType.name(type),
                        "the last answer to input " + input + ", a " + FrameType.name(kind(input)));
                assertEquals(0, length, "an END_OF_OUTPUTS body");
                outputSeen = false;
                next = input + 1;
                inFlight.release();
            }
        }
    }

    @Test
    void aCorruptFrameStopsTheWorkerWhichNamesIt() throws Exception {
        Path path = dir.resolve("rings").resolve("corrupt.ring");
        try (RingFile bridge = RingFile.create(path, CAPACITY, CAPACITY, TOKEN);
             NativePeer worker = NativePeer.start(dir, "fb_echo_worker", path.toString(), TOKEN)) {
            RingProducer producer = bridge.toWorkerProducer();
            FramePlacement placement = new FramePlacement(CAPACITY);
            // A first record is answered, so the corrupt frame sits past the start of the ring.
            int first = 1;
            long body = producer.tryClaim(FrameType.RECORD, first, bodyLength(first));
            assertTrue(body >= 0, "an empty ring has room");
            writeInput(producer, body, first);
            placement.place(RingLayout.FRAME_HEADER + bodyLength(first));
            producer.publish();
            int[] answers = {0};
            worker.receive(bridge.fromWorkerConsumer(), (type, flags, sequence, file, offset, length) -> answers[0]++,
                    () -> answers[0] == 2, "the answer to a first record");

            long corrupt = producer.tryClaim(FrameType.WATERMARK, first + 1, Long.BYTES);
            producer.segment().set(ValueLayout.JAVA_SHORT,
                    corrupt - RingLayout.FRAME_HEADER + RingLayout.FRAME_TYPE, (short) 99);
            long position = placement.place(RingLayout.FRAME_HEADER + Long.BYTES);
            producer.publish();

            assertEquals(3, worker.awaitExit(PATIENCE), "the worker's exit status on a corrupt frame; stderr: "
                    + worker.stderr());
            assertEquals("fb_echo_worker: " + path + " (to-worker ring): corrupt frame at position " + position
                            + " (ring offset " + position + "): unknown frame type 99 (frames are 16 to 2048 bytes, "
                            + "8-byte aligned)\n", worker.stderr());
            assertEquals("the worker closed the ring", bridge.peerGone(), "the worker sets the closed flag");
        }
    }

    @Test
    void theWorkerRefusesAWrongToken() throws Exception {
        Path path = dir.resolve("rings").resolve("token.ring");
        try (RingFile bridge = RingFile.create(path, CAPACITY, CAPACITY, TOKEN);
             NativePeer worker = NativePeer.start(dir, "fb_echo_worker", path.toString(), "not-the-token")) {
            assertEquals(2, worker.awaitExit(PATIENCE), "the worker's exit status on a wrong token; stderr: "
                    + worker.stderr());
            assertEquals("fb_echo_worker: " + path + ": the session token does not match; refusing the ring\n",
                    worker.stderr());
            assertNull(bridge.peerGone(), "a refused worker never attached, so it cannot have left");
        }
    }
}
