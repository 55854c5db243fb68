package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.StepHarness;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The built-in {@code count} step in a keyed session (docs/steps.md): its windows in the map cell {@code windows} (as
 * {@code window} keeps them) and fired by event-time timers, with the outputs it gives in a session that is not keyed
 * (whole-instance state and watermarks: StepsTest, BuiltInStepsGoldenTest), which each test here runs beside it.
 */
class CountStepTest {

    private static final String CONFIG = "{\"window_ms\":10,\"key_json_field\":\"user\"}";

    private static byte[] b(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private static Record rec(String user, long timestamp) {
        return new Record(b("{\"user\":\"" + user + "\"}"), Map.of(), timestamp);
    }

    private static String result(String key, long start, long count) {
        return "{\"key\":\"" + key + "\",\"window_start\":" + start + ",\"window_end\":" + (start + 10) + ",\"count\":"
                + count + "}";
    }

    private static List<String> texts(List<Record> records) {
        return records.stream().map(record -> new String(record.payload(), StandardCharsets.UTF_8)).toList();
    }

    private static byte[] entry(long start, String key) {
        return ByteBuffer.allocate(8 + b(key).length).putLong(start).put(b(key)).array();
    }

    private static byte[] le(long value) {
        return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value).array();
    }

    private static StepHarness.Timer at(long timestamp) {
        return new StepHarness.Timer(TimeDomain.EVENT_TIME, timestamp);
    }

    /**
     * The same step in a keyed session (records keyed by their user) and as it ran before in a keyed segment, an
     * instance per key group with whole-instance state (each user a key group of its own, numbered by its first
     * letter, so that key group order is key order).
     */
    private record Both(StepHarness keyed, StepHarness whole) implements AutoCloseable {
        static Both of(String config) throws Exception {
            return new Both(StepHarness.keyed("c", "count", config), StepHarness.named("c", "count", config));
        }

        /** A record of {@code user} to both: neither emits anything for it. */
        void add(String user, long timestamp) throws Exception {
            assertEquals(List.of(), keyed.process(b(user), rec(user, timestamp)));
            assertEquals(List.of(), whole.process(user.charAt(0), rec(user, timestamp)));
        }

        /** A watermark to both: the keyed session's outputs, which are the other's. */
        List<Record> watermark(long timestamp) throws Exception {
            List<Record> fired = keyed.watermark(timestamp);
            assertEquals(same(whole.watermark(timestamp)), same(fired));
            return fired;
        }

        /** Outputs as their payloads, headers and timestamps. */
        private static List<String> same(List<Record> records) {
            List<String> seen = new ArrayList<>();
            for (Record record : records) {
                seen.add(new String(record.payload(), StandardCharsets.UTF_8) + " " + record.headers() + " "
                        + record.timestamp());
            }
            return seen;
        }

        @Override
        public void close() throws Exception {
            try (keyed; whole) {
                // both closed
            }
        }
    }

    @Test
    void anInOrderStreamOfSeveralKeysGivesTheOutputsOfASessionThatIsNotKeyed() throws Exception {
        try (Both count = Both.of(CONFIG)) {
            count.add("a", 1);
            count.add("b", 3);
            count.add("a", 5);
            count.add("c", 12);
            count.add("a", 14);
            assertEquals(List.of(at(9), at(19)), count.keyed().timers(b("a")), "a timer at each window's end - 1");
            assertEquals(List.of(at(19)), count.keyed().timers(b("c")));
            SortedMap<byte[], byte[]> a = count.keyed().entries(b("a"), WindowStep.WINDOWS);
            assertEquals(2, a.size());
            assertArrayEquals(entry(0, "a"), a.firstKey(), "the window start (big-endian), then the key");
            assertArrayEquals(le(2), a.get(a.firstKey()), "the count, little-endian");

            assertEquals(List.of(), count.watermark(8));
            List<Record> fired = count.watermark(10);
            assertEquals(List.of(result("a", 0, 2), result("b", 0, 1)), texts(fired));
            assertEquals(Map.of("key", "a"), fired.getFirst().headers());
            assertEquals(9, fired.getFirst().timestamp(), "window_end - 1");
            assertEquals(List.of(at(19)), count.keyed().timers(b("a")));
            assertEquals(1, count.keyed().entries(b("a"), WindowStep.WINDOWS).size(), "a fired window is dropped");
            assertEquals(List.of(result("a", 10, 1), result("c", 10, 1)), texts(count.watermark(25)));
            assertEquals(Map.of(), count.keyed().checkpoint(), "no whole-instance state in a keyed session");
        }
    }

    /** A record for a window that fired opens it again: its timer, behind the watermark, fires at the next one. */
    @Test
    void aRecordBehindTheWatermarkIsCountedAgainAndEmittedAtTheNextWatermark() throws Exception {
        try (Both count = Both.of(CONFIG)) {
            count.add("a", 4);
            assertEquals(List.of(result("a", 0, 1)), texts(count.watermark(20)));
            count.add("a", 3);
            count.add("a", 7);
            assertEquals(List.of(at(9)), count.keyed().timers(b("a")), "set behind the watermark");
            List<Record> again = count.watermark(21);
            assertEquals(List.of(result("a", 0, 2)), texts(again));
            assertEquals(9, again.getFirst().timestamp());
            assertEquals(List.of(), again.getFirst().headers().keySet().stream().filter("late"::equals).toList(),
                    "no late header: that is window's");
        }
    }

    @Test
    void theEndOfInputFiresEveryWindowInOrderPerKey() throws Exception {
        try (Both count = Both.of(CONFIG)) {
            count.add("a", 25);
            count.add("a", 3);
            count.add("a", -4);
            List<Record> ended = count.watermark(Long.MAX_VALUE);
            assertEquals(List.of(result("a", -10, 1), result("a", 0, 1), result("a", 20, 1)), texts(ended));
            assertEquals(List.of(), count.keyed().timers(b("a")));
            assertEquals(0, count.keyed().entries(b("a"), WindowStep.WINDOWS).size());
        }
    }

    /** Without key_header or key_json_field, or a record without the field, the key is "", as today. */
    @Test
    void theKeyIsEmptyWhenNotConfiguredOrMissing() throws Exception {
        try (Both count = Both.of("{\"window_ms\":10}")) {
            count.add("a", 1);
            count.add("b", 2);
            assertEquals(List.of(result("", 0, 1), result("", 0, 1)), texts(count.watermark(10)),
                    "a window per pipeline key, as the whole-instance one has one per key group");
        }
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            count.process(b("k"), new Record(b("{}"), Map.of(), 1));
            count.process(b("k"), new Record(b("not json"), Map.of(), 2));
            assertArrayEquals(le(2), count.entries(b("k"), WindowStep.WINDOWS).get(entry(0, "")));
            assertEquals(List.of(result("", 0, 2)), texts(count.endInput()));
        }
    }

    @Test
    void aSnapshotCarriesTheWindowsAndTheirTimers() throws Exception {
        StepHarness.Checkpoint saved;
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            count.process(b("a"), rec("a", 1));
            count.process(b("b"), rec("b", 12));
            saved = count.snapshot();
        }
        assertEquals(Map.of(), saved.states(), "no whole-instance state");
        assertEquals(2, saved.keysWithCells());
        assertEquals(2, saved.pendingTimers());
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            count.restore(saved);
            count.process(b("a"), rec("a", 2));
            assertEquals(List.of(result("a", 0, 2)), texts(count.watermark(9)));
            assertEquals(List.of(result("b", 10, 1)), texts(count.endInput()));
        }
    }

    @Test
    void wholeInstanceStateHoldingOpenWindowsIsRefusedInAKeyedSession() throws Exception {
        SortedMap<Integer, byte[]> open;
        SortedMap<Integer, byte[]> empty;
        try (StepHarness whole = StepHarness.named("c", "count", CONFIG)) {
            whole.process(3, rec("a", 1));
            whole.process(3, rec("b", 2));
            open = whole.checkpoint();
            whole.endInput();
            empty = whole.checkpoint();
        }
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            Exception refused = assertThrows(Exception.class, () -> count.restore(open));
            assertTrue(refused.getMessage().contains("step 'c' (count) is given 2 open windows as whole-instance state,"
                    + " a checkpoint taken before count kept its windows in cells"), refused.getMessage());
        }
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            count.restore(empty);
            count.process(b("a"), rec("a", 1));
            assertEquals(List.of(result("a", 0, 1)), texts(count.endInput()));
        }
    }

    @Test
    void aCellThatHoldsNoCountFailsTheRecordNamingTheStep() throws Exception {
        try (StepHarness count = StepHarness.keyed("c", "count", CONFIG)) {
            count.put(b("a"), WindowStep.WINDOWS, entry(0, "a"), new byte[] {1});
            Exception broken = assertThrows(Exception.class, () -> count.process(b("a"), rec("a", 1)));
            assertTrue(broken.getMessage().startsWith("step 'c' (count): cell 'windows' holds 1 bytes for key 'a'"),
                    broken.getMessage());
        }
    }
}
