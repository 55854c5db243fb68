package org.flinkbridge.worker.steps;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.WindowAggregate;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Map;

import static java.nio.charset.StandardCharsets.UTF_8;

/**
 * User aggregates of the built-in {@code window} step for its tests, each reading the integer field {@code v} of a
 * record's JSON payload. The Python worker's tests have the same ones (workers/python/tests/aggregates.py), with the
 * same accumulators and results, and the Rust worker's hosts those.
 */
public final class TestAggregates {

    private static final ObjectMapper JSON = new ObjectMapper();

    private TestAggregates() {}

    static long v(Record record) throws IOException {
        return JSON.readTree(record.payload()).get("v").longValue();
    }

    /**
     * The mean of v (docs/steps.md's example): the accumulator is the sum and the count (16 bytes, each an i64
     * big-endian).
     */
    public static final class Average implements WindowAggregate {
        @Override
        public byte[] add(byte[] accumulator, Record record) throws IOException {
            ByteBuffer sums = accumulator == null ? ByteBuffer.allocate(16) : ByteBuffer.wrap(accumulator);
            return ByteBuffer.allocate(16).putLong(sums.getLong(0) + v(record)).putLong(sums.getLong(8) + 1).array();
        }

        @Override
        public byte[] merge(byte[] a, byte[] b) {
            ByteBuffer x = ByteBuffer.wrap(a);
            ByteBuffer y = ByteBuffer.wrap(b);
            return ByteBuffer.allocate(16).putLong(x.getLong(0) + y.getLong(0)).putLong(x.getLong(8) + y.getLong(8))
                    .array();
        }

        @Override
        public Object result(byte[] accumulator) {
            ByteBuffer sums = ByteBuffer.wrap(accumulator);
            return (double) sums.getLong(0) / sums.getLong(8);
        }
    }

    /**
     * Shows the calls: the accumulator is the text of the values added, comma-separated (UTF-8); a merge writes
     * {@code [a|b]}, and the result is the object {@code {"trace": text}}.
     */
    public static final class Trace implements WindowAggregate {
        @Override
        public byte[] add(byte[] accumulator, Record record) throws IOException {
            String v = Long.toString(v(record));
            return (accumulator == null ? v : new String(accumulator, UTF_8) + "," + v).getBytes(UTF_8);
        }

        @Override
        public byte[] merge(byte[] a, byte[] b) {
            return ("[" + new String(a, UTF_8) + "|" + new String(b, UTF_8) + "]").getBytes(UTF_8);
        }

        @Override
        public Object result(byte[] accumulator) {
            return Map.of("trace", new String(accumulator, UTF_8));
        }
    }

    /**
     * Trace, failing where told: add on v = 13, merge always, result on a window holding v = 99; a window holding v
     * = 0 has a result that is no JSON.
     */
    public static final class Failing implements WindowAggregate {
        private final Trace trace = new Trace();

        @Override
        public byte[] add(byte[] accumulator, Record record) throws IOException {
            if (v(record) == 13) {
                throw new IllegalStateException("told to fail on 13");
            }
            return trace.add(accumulator, record);
        }

        @Override
        public byte[] merge(byte[] a, byte[] b) {
            throw new IllegalStateException("told not to merge");
        }

        @Override
        public Object result(byte[] accumulator) {
            String text = new String(accumulator, UTF_8);
            if (text.equals("99")) {
                throw new IllegalStateException("told to fail on 99");
            }
            return text.equals("0") ? new Object() : text;
        }
    }

    /** Returns no accumulator. */
    public static final class Forgetful implements WindowAggregate {
        @Override
        public byte[] add(byte[] accumulator, Record record) {
            return null;
        }

        @Override
        public byte[] merge(byte[] a, byte[] b) {
            return a;
        }

        @Override
        public Object result(byte[] accumulator) {
            return null;
        }
    }
}
