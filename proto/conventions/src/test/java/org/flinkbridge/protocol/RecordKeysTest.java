package org.flinkbridge.protocol;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RecordKeysTest {

    @Test
    void aKeyedBodyReadsBackAsKeyThenRecord() throws Exception {
        byte[] key = "user-ü".getBytes(StandardCharsets.UTF_8);
        byte[] payload = "{}".getBytes(StandardCharsets.UTF_8);
        int length = RecordKeys.prefixLength(key) + RecordCodec.bodyLength(Map.of("h", "v"), payload);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment body = arena.allocate(length);
            RecordKeys.write(body, 0, key);
            RecordCodec.write(body, RecordKeys.prefixLength(key), 7, Map.of("h", "v"), payload);

            assertEquals(key.length, body.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0));
            byte[] read = RecordKeys.read(body, 0, length);
            assertArrayEquals(key, read);
            int prefix = RecordKeys.prefixLength(read);
            assertEquals("7 {h=v} {}", RecordCodec.read(body, prefix, length - prefix, (timestamp, headers, bytes) ->
                    timestamp + " " + headers + " " + new String(bytes, StandardCharsets.UTF_8)));
        }
    }

    @Test
    void anEmptyKeyIsAKey() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment body = arena.allocate(4);
            RecordKeys.write(body, 0, new byte[0]);
            assertArrayEquals(new byte[0], RecordKeys.read(body, 0, 4));
        }
    }

    @Test
    void aKeyLengthRunningPastTheBodyOrNegativeIsCorrupt() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment body = arena.allocate(16);
            body.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, 13);
            Exception past = assertThrows(CorruptRecordException.class, () -> RecordKeys.read(body, 0, 16));
            assertTrue(past.getMessage().contains("a key of 13 bytes in a body of 16 bytes"), past.getMessage());
            body.set(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0, -1);
            assertThrows(CorruptRecordException.class, () -> RecordKeys.read(body, 0, 16));
            assertThrows(CorruptRecordException.class, () -> RecordKeys.read(body, 0, 3));
        }
    }
}
