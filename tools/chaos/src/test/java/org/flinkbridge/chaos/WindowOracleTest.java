package org.flinkbridge.chaos;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class WindowOracleTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** A window result of {@code key-K}. */
    private static String window(int key, long start, long count) {
        return "{\"key\":\"key-" + key + "\",\"window_start\":" + start + ",\"window_end\":" + (start + 1000)
                + ",\"count\":" + count + "}";
    }

    /** A late input record. */
    private static String late(int key, long id) {
        return "{\"key\":\"key-" + key + "\",\"id\":" + id + "}";
    }

    /** An oracle that read these batches, each with a right batch_size header. */
    private static WindowOracle read(String[]... batches) throws IOException {
        WindowOracle oracle = new WindowOracle();
        for (String[] batch : batches) {
            oracle.add(JSON.readTree("[" + String.join(",", batch) + "]"), Integer.toString(batch.length));
        }
        return oracle;
    }

    private static String[] batch(String... elements) {
        return elements;
    }

    @Test
    void everyWindowAndLateRecordOnceIsExactlyOnce() throws IOException {
        WindowOracle.Result result = read(
                batch(window(0, 0, 2), window(0, 1000, 1)),
                batch(window(1, 0, 2)),
                batch(late(1, 7))).compare(new int[] {3, 3});
        assertEquals(new WindowOracle.Result(6, 3, 3, 1, 0, 0, 0), result);
        assertTrue(result.exactlyOnce());
        assertEquals(3 + 2 * 3, result.timers());
        assertEquals(" windows=3 batches=3 late=1 timers=9 batch_size_mismatches=0", result.details());
    }

    @Test
    void aWindowReadTwiceIsADuplicateAndCountsOnce() throws IOException {
        WindowOracle.Result result = read(batch(window(0, 0, 2)), batch(window(0, 0, 2), window(0, 1000, 1)))
                .compare(new int[] {3});
        assertEquals(new WindowOracle.Result(3, 2, 2, 0, 1, 0, 0), result);
        assertFalse(result.exactlyOnce());
    }

    @Test
    void aLateRecordReadTwiceIsADuplicate() throws IOException {
        WindowOracle.Result result = read(batch(late(0, 4), late(0, 4)), batch(window(0, 0, 1)))
                .compare(new int[] {2});
        assertEquals(new WindowOracle.Result(2, 2, 1, 1, 1, 0, 0), result);
    }

    @Test
    void fewerRecordsThanTheKeysInputAreLossesAndMoreDuplicates() throws IOException {
        WindowOracle.Result result = read(batch(window(0, 0, 2), window(1, 0, 5), late(1, 3)))
                .compare(new int[] {3, 4});
        assertEquals(new WindowOracle.Result(8, 1, 2, 1, 2, 1, 0), result);
    }

    @Test
    void aKeyNeverWrittenLosesEveryRecordAndAnUnknownKeyIsDuplicates() throws IOException {
        WindowOracle.Result result = read(batch("{\"key\":\"other\",\"window_start\":0,\"window_end\":1000,"
                + "\"count\":2}")).compare(new int[] {2, 3});
        assertEquals(new WindowOracle.Result(2, 1, 1, 0, 2, 5, 0), result);
    }

    @Test
    void whatNoInputCanGiveIsADuplicate() throws IOException {
        WindowOracle oracle = read(batch(window(0, 0, 0), "{\"key\":\"key-0\",\"id\":1,\"extra\":true}",
                "{\"id\":2}", "\"text\"", late(0, -1), window(0, 1000, 1)));
        oracle.add(JSON.readTree("{\"not\":\"an array\"}"), null);
        assertEquals(new WindowOracle.Result(1, 2, 1, 0, 6, 0, 0), oracle.compare(new int[] {1}));
    }

    @Test
    void aBatchSizeOtherThanTheArraysIsAMismatch() throws IOException {
        WindowOracle oracle = new WindowOracle();
        oracle.add(JSON.readTree("[" + window(0, 0, 1) + "," + late(0, 5) + "]"), "3");
        oracle.add(JSON.readTree("[" + window(0, 1000, 1) + "]"), null);
        WindowOracle.Result result = oracle.compare(new int[] {3});
        assertEquals(new WindowOracle.Result(3, 2, 2, 1, 0, 0, 1), result);
        assertFalse(result.exactlyOnce());
    }

    @Test
    void readsTheBatchSizeHeaderOfAKafkaRecord() throws IOException {
        WindowOracle oracle = new WindowOracle();
        ConsumerRecord<byte[], byte[]> record = new ConsumerRecord<>("out", 0, 0, null,
                ("[" + window(0, 0, 1) + "]").getBytes(StandardCharsets.UTF_8));
        record.headers().add(new RecordHeader("batch_size", "2".getBytes(StandardCharsets.UTF_8)));
        oracle.add(record);
        assertEquals(1, oracle.accounted());
        assertEquals(1, oracle.read());
        assertEquals(1, oracle.compare(new int[] {1}).batchSizeMismatches());
    }
}
