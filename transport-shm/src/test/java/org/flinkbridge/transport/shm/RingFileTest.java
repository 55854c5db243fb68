package org.flinkbridge.transport.shm;

import org.flinkbridge.protocol.FrameType;
import org.flinkbridge.protocol.RecordCodec;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.ObjLongConsumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RingFileTest {

    private static final String TOKEN = "0123456789abcdef";

    record Decoded(long sequence, long timestamp, Map<String, String> headers, byte[] payload) {}

    static byte[] payload(int i) {
        byte[] bytes = new byte[i % 300];
        for (int b = 0; b < bytes.length; b++) {
            bytes[b] = (byte) (i * 31 + b);
        }
        return bytes;
    }

    @Test
    void recordsCrossTheRingIntactWhileItWrapsManyTimes(@TempDir Path dir) throws Exception {
        int count = 50_000;
        Path path = dir.resolve("rings").resolve("s1" + RingFiles.SUFFIX);
        try (RingFile bridge = RingFile.create(path, 4096, 4096, TOKEN);
             RingFile worker = RingFile.attach(path, TOKEN)) {
            RingConsumer consumer = worker.toWorkerConsumer();
            CompletableFuture<List<Decoded>> received = CompletableFuture.supplyAsync(() -> {
                List<Decoded> records = new ArrayList<>();
                try {
                    while (records.size() < count) {
                        if (consumer.poll((type, flags, sequence, file, offset, length) -> {
                            assertEquals(FrameType.RECORD, type);
                            records.add(RecordCodec.read(file, offset, length,
                                    (ts, headers, bytes) -> new Decoded(sequence, ts, headers, bytes)));
                        }, 64) == 0) {
                            consumer.awaitFrames(TimeUnit.MILLISECONDS.toNanos(50));
                        }
                    }
                } catch (Exception e) {
                    throw new RuntimeException(e);
                }
                return records;
            });
            RingProducer producer = bridge.toWorkerProducer();
            for (int i = 0; i < count; i++) {
                Map<String, String> headers = i % 3 == 0 ? Map.of("k", "v" + i, "ü", "€") : Map.of();
                byte[] bytes = payload(i);
                int length = RecordCodec.bodyLength(headers, bytes);
                long body;
                while ((body = producer.tryClaim(FrameType.RECORD, i, length)) < 0) {
                    if (received.isDone()) {
                        received.join(); // the consumer stopped early: surface why
                    }
                    producer.awaitSpace(TimeUnit.MILLISECONDS.toNanos(50));
                }
                RecordCodec.write(producer.segment(), body, 1000L + i, headers, bytes);
                if (i % 16 == 15) {
                    producer.publish();
                }
            }
            producer.publish();

            List<Decoded> records = received.get(60, TimeUnit.SECONDS);
            for (int i = 0; i < count; i++) {
                Decoded record = records.get(i);
                assertEquals(i, record.sequence());
                assertEquals(1000L + i, record.timestamp());
                assertArrayEquals(payload(i), record.payload());
                assertEquals(i % 3 == 0 ? Map.of("k", "v" + i, "ü", "€") : Map.of(), record.headers());
            }
        }
        assertFalse(Files.exists(path), "the bridge removes the ring file on close");
    }

    @Test
    void aFrameLargerThanHalfTheRingIsRefusedNamingTheSizes(@TempDir Path dir) throws Exception {
        try (RingFile bridge = RingFile.create(dir.resolve("big.ring"), 8192, 4096, TOKEN)) {
            RingException error = assertThrows(RingException.class,
                    () -> bridge.toWorkerProducer().tryClaim(FrameType.RECORD, 0, 5000));
            assertTrue(error.getMessage().endsWith("a RECORD frame of 5016 bytes does not fit: frames are at most "
                    + "4096 bytes, half the ring's capacity of 8192; give the session larger rings"), error.getMessage());
        }
    }

    @Test
    void aBodyLengthNearTheIntegerLimitIsRefusedNotWrapped(@TempDir Path dir) throws Exception {
        try (RingFile bridge = RingFile.create(dir.resolve("huge.ring"), 4096, 4096, TOKEN)) {
            RingException error = assertThrows(RingException.class,
                    () -> bridge.toWorkerProducer().tryClaim(FrameType.RECORD, 0, Integer.MAX_VALUE - 8));
            assertTrue(error.getMessage().contains("a RECORD frame of 2147483655 bytes does not fit"), error.getMessage());
        }
    }

    @Test
    void aPaddingLengthNearTheIntegerLimitIsCorruptNotALoop(@TempDir Path dir) throws Exception {
        RingException error = pollCorrupted(dir.resolve("pad.ring"), (file, frame) -> {
            file.set(ValueLayout.JAVA_SHORT, frame + RingLayout.FRAME_TYPE, (short) FrameType.PADDING);
            file.set(ValueLayout.JAVA_INT, frame + RingLayout.FRAME_LENGTH, Integer.MAX_VALUE);
        });
        assertTrue(error.getMessage().contains("impossible length 2147483647 for a PADDING frame"), error.getMessage());
    }

    /**
     * Claims a WATERMARK frame in a new ring, lets {@code corrupt} overwrite its header (in the file, at the frame's
     * start), publishes it, and returns how the worker's side fails to poll it.
     */
    private static RingException pollCorrupted(Path path, ObjLongConsumer<MemorySegment> corrupt) throws IOException {
        try (RingFile bridge = RingFile.create(path, 4096, 4096, TOKEN);
             RingFile worker = RingFile.attach(path, TOKEN)) {
            RingProducer producer = bridge.toWorkerProducer();
            corrupt.accept(producer.segment(), producer.tryClaim(FrameType.WATERMARK, 7, 8) - RingLayout.FRAME_HEADER);
            producer.publish();
            return assertThrows(RingException.class,
                    () -> worker.toWorkerConsumer().poll((t, g, s, f, o, l) -> { }, 10));
        }
    }

    @Test
    @Timeout(value = 30, threadMode = Timeout.ThreadMode.SEPARATE_THREAD) // a loop without the check: fail, not stall
    void aFrameRunningPastThePublishedBytesNearLongMaxValueIsCorruptNotALoop() {
        int capacity = 4096;
        long data = 256;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment file = arena.allocate(data + capacity);
            // 8 bytes published, where a 16-byte PADDING frame starts; head + 16 would wrap to Long.MIN_VALUE and pass
            // a check against the tail, then walk the 4096-byte PADDING frame at offset 0 without end.
            file.set(ValueLayout.JAVA_LONG, RingLayout.CONSUMER_POSITION, Long.MAX_VALUE - 15);
            file.set(ValueLayout.JAVA_LONG, RingLayout.PRODUCER_POSITION, Long.MAX_VALUE - 7);
            putPadding(file, data + capacity - 16, 16);
            putPadding(file, data, capacity);
            RingConsumer consumer = new RingConsumer(file, 0, data, capacity, new WaitStrategy(0), "top.ring");
            RingException error = assertThrows(RingException.class, () -> consumer.poll((t, g, s, f, o, l) -> { }, 10));
            assertTrue(error.getMessage().contains("corrupt frame at position " + (Long.MAX_VALUE - 15)
                    + " (ring offset 4080): impossible length 16 for a PADDING frame"), error.getMessage());
        }
    }

    private static void putPadding(MemorySegment file, long at, int length) {
        file.set(ValueLayout.JAVA_INT, at + RingLayout.FRAME_LENGTH, length);
        file.set(ValueLayout.JAVA_SHORT, at + RingLayout.FRAME_TYPE, (short) FrameType.PADDING);
    }

    @Test
    void aLoneSurrogateIsWrittenAsTheReplacementCharacter(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("utf8.ring");
        try (RingFile bridge = RingFile.create(path, 4096, 4096, TOKEN);
             RingFile worker = RingFile.attach(path, TOKEN)) {
            Map<String, String> headers = Map.of("k\uD800", "\uDC00v\uD83D\uDE00");
            RingProducer producer = bridge.toWorkerProducer();
            int length = RecordCodec.bodyLength(headers, new byte[0]);
            RecordCodec.write(producer.segment(), producer.tryClaim(FrameType.RECORD, 0, length), 0, headers, new byte[0]);
            producer.publish();
            List<Map<String, String>> read = new ArrayList<>();
            worker.toWorkerConsumer().poll((type, flags, sequence, file, offset, bodyLength) -> read.add(
                    RecordCodec.read(file, offset, bodyLength, (ts, h, payload) -> h)), 1);
            assertEquals(List.of(Map.of("k\uFFFD", "\uFFFDv\uD83D\uDE00")), read);
        }
    }

    @Test
    void aCorruptFrameIsNamed(@TempDir Path dir) throws Exception {
        RingException error = pollCorrupted(dir.resolve("bad.ring"),
                (file, frame) -> file.set(ValueLayout.JAVA_SHORT, frame + RingLayout.FRAME_TYPE, (short) 99));
        assertTrue(error.getMessage().contains("corrupt frame at position 0 (ring offset 0): unknown frame type 99"),
                error.getMessage());
    }

    @Test
    void filesAreOwnerOnlyAndTokensMustMatch(@TempDir Path dir) throws Exception {
        Path rings = dir.resolve("private");
        Path path = rings.resolve("s.ring");
        try (RingFile ignored = RingFile.create(path, 4096, 4096, TOKEN)) {
            assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(rings)));
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(path)));
            RingException wrong = assertThrows(RingException.class, () -> RingFile.attach(path, "not-the-token"));
            assertTrue(wrong.getMessage().endsWith("the session token does not match; refusing the ring"));
            RingException nonAscii = assertThrows(RingException.class, () -> RingFile.attach(path, "t\u00e9"));
            assertTrue(nonAscii.getMessage().startsWith("a session token must be 1 to 32 ASCII characters"));
        }
        Files.setPosixFilePermissions(rings, PosixFilePermissions.fromString("rwxr-xr-x"));
        IOException open = assertThrows(IOException.class, () -> RingFile.create(path, 4096, 4096, TOKEN));
        assertTrue(open.getMessage().startsWith("ring folder " + rings + " is a folder owned by uid ")
                && open.getMessage().contains(" with mode 0755; "), open.getMessage());
    }

    @Test
    void aHeaderFromAnotherVersionIsRefused(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("v.ring");
        try (RingFile bridge = RingFile.create(path, 4096, 4096, TOKEN)) {
            bridge.toWorkerProducer().segment().set(ValueLayout.JAVA_INT, RingLayout.VERSION_OFFSET, 7);
            RingException error = assertThrows(RingException.class, () -> RingFile.attach(path, TOKEN));
            assertTrue(error.getMessage().endsWith("not a ring file this side understands: version is 7, expected 1"),
                    error.getMessage());
        }
        Files.writeString(dir.resolve("junk.ring"), "x".repeat(5000));
        RingException junk = assertThrows(RingException.class, () -> RingFile.attach(dir.resolve("junk.ring"), TOKEN));
        assertTrue(junk.getMessage().contains("not a ring file (it does not start with the ring magic)"), junk.getMessage());
    }

    @Test
    void peersNoticeEachOtherLeaving(@TempDir Path dir) throws Exception {
        Path path = dir.resolve("p.ring");
        RingFile bridge = RingFile.create(path, 4096, 4096, TOKEN);
        RingFile worker = RingFile.attach(path, TOKEN);
        assertNull(bridge.peerGone());
        assertNull(worker.peerGone());
        worker.close();
        assertEquals("the worker closed the ring", bridge.peerGone());
        bridge.close();
    }

    /**
     * Ring files a crash left behind go: those whose bridge heartbeat has been silent for over a minute, and
     * those without a complete header as old. Pids do not count: a pid the header names may have been reused
     * or belong to another PID namespace.
     */
    @Test
    void staleRingFilesOfCrashedBridgesAreRemoved(@TempDir Path dir) throws Exception {
        Path rings = dir.resolve("rings");
        Path live = rings.resolve("live.ring");
        Path template = rings.resolve("template.ring");
        try (RingFile ignored = RingFile.create(live, 4096, 4096, TOKEN)) {
            try (RingFile other = RingFile.create(template, 4096, 4096, TOKEN)) {
                Files.copy(template, rings.resolve("silent.ring"));
                Files.copy(template, rings.resolve("dead-pid.ring"));
            }
            long twoMinutesAgo = System.currentTimeMillis() - TimeUnit.MINUTES.toMillis(2);
            writeLong(rings.resolve("silent.ring"), RingLayout.BRIDGE_HEARTBEAT_OFFSET, twoMinutesAgo);
            Process dead = new ProcessBuilder("true").start();
            dead.waitFor();
            writeInt(rings.resolve("dead-pid.ring"), RingLayout.BRIDGE_PID_OFFSET, (int) dead.pid());
            Files.writeString(rings.resolve("notes.txt"), "not a ring".getBytes(StandardCharsets.UTF_8).length + "");

            // Files with no complete header: one being created right now, and one a crash left long ago.
            Path creating = Files.write(rings.resolve("creating.ring"), new byte[100]);
            Path abandoned = Files.write(rings.resolve("abandoned.ring"), new byte[100]);
            Files.setLastModifiedTime(abandoned, java.nio.file.attribute.FileTime.fromMillis(twoMinutesAgo));

            assertEquals(2, RingFiles.cleanStale(rings));
            assertTrue(Files.exists(live));
            assertTrue(Files.exists(creating), "a ring file being created is not stale");
            assertTrue(Files.exists(rings.resolve("dead-pid.ring")), "a fresh heartbeat is alive, whatever the pid");
            assertFalse(Files.exists(abandoned));
            assertFalse(Files.exists(rings.resolve("silent.ring")));
            assertTrue(Files.exists(rings.resolve("notes.txt")), "only ring files are touched");
        }
    }

    private static void writeLong(Path file, long offset, long value) throws IOException {
        write(file, offset, java.nio.ByteBuffer.allocate(Long.BYTES).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putLong(value).flip());
    }

    private static void writeInt(Path file, long offset, int value) throws IOException {
        write(file, offset, java.nio.ByteBuffer.allocate(Integer.BYTES).order(java.nio.ByteOrder.LITTLE_ENDIAN)
                .putInt(value).flip());
    }

    private static void write(Path file, long offset, java.nio.ByteBuffer bytes) throws IOException {
        try (java.nio.channels.FileChannel channel = java.nio.channels.FileChannel.open(file,
                java.nio.file.StandardOpenOption.WRITE)) {
            channel.write(bytes, offset);
        }
    }
}
