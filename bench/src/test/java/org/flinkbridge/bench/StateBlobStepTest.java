package org.flinkbridge.bench;

import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepHarness;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class StateBlobStepTest {

    private static Record record(String key) {
        return new Record("{}".getBytes(UTF_8), Map.of(StateLoad.KEY_HEADER, key), 0);
    }

    private static long count(byte[] value) {
        assertEquals(StateBlobStep.VALUE_BYTES, value.length);
        return ByteBuffer.wrap(value).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    /** The step's own state in its segment's: behind the count of steps (one) and its length. */
    private static ByteBuffer stepState(byte[] segmentState) {
        ByteBuffer segment = ByteBuffer.wrap(segmentState);
        assertEquals(1, segment.getInt());
        assertEquals(segment.remaining() - Integer.BYTES, segment.getInt());
        return segment.slice();
    }

    @Test
    void aCellHoldsTheKeysCountAndRandomBytesAndTheRecordComesBack() throws Exception {
        byte[] key = "key-1".getBytes(UTF_8);
        try (StepHarness blob = StepHarness.of(StateBlobStep.class, "{\"keep\":\"cells\"}")) {
            Record input = record("key-1");
            Map<String, String> counted = new HashMap<>(input.headers());
            counted.put(StateBlobStep.COUNT_HEADER, "1");
            assertEquals(List.of(new Record(input.payload(), counted, input.timestamp())), blob.process(key, input));
            assertEquals("2", blob.process(key, input).getFirst().headers().get(StateBlobStep.COUNT_HEADER));
            byte[] value = blob.value(key, StateBlobStep.CELL);
            assertEquals(2, count(value));
            blob.process(key, input);
            assertEquals(3, count(blob.value(key, StateBlobStep.CELL)));
        }
    }

    @Test
    void wholeInstanceStateComesBackFromItsSnapshot() throws Exception {
        SortedMap<Integer, byte[]> checkpoint;
        try (StepHarness blob = StepHarness.of(StateBlobStep.class, "{\"keep\":\"instance\"}")) {
            blob.process(3, record("a"));
            blob.process(3, record("a"));
            blob.process(3, record("b"));
            checkpoint = blob.checkpoint();
        }
        // Entries, then per key: its length and UTF-8, the value's length and bytes.
        assertEquals(Integer.BYTES + 2 * (Integer.BYTES + 1 + Integer.BYTES + StateBlobStep.VALUE_BYTES),
                stepState(checkpoint.get(3)).remaining());
        try (StepHarness restored = StepHarness.of(StateBlobStep.class, "{\"keep\":\"instance\"}")) {
            restored.restore(checkpoint);
            restored.process(3, record("a"));
            SortedMap<Integer, byte[]> after = restored.checkpoint();
            ByteBuffer state = stepState(after.get(3));
            assertEquals(2, state.getInt());
            for (int entry = 0; entry < 2; entry++) {
                byte[] key = new byte[state.getInt()];
                state.get(key);
                byte[] value = new byte[state.getInt()];
                state.get(value);
                assertEquals(new String(key, UTF_8).equals("a") ? 3 : 1, count(value));
            }
        }
    }

    @Test
    void anUnknownWayToKeepIsRefusedNamingTheStep() {
        Exception refused = assertThrows(Exception.class,
                () -> StepHarness.of(StateBlobStep.class, "{\"keep\":\"disk\"}").close());
        assertTrue(refused.getMessage().contains("'keep'") && refused.getMessage().contains("\"disk\""),
                refused.getMessage());
    }
}
