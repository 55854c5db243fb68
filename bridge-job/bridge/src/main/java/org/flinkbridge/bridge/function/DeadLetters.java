package org.flinkbridge.bridge.function;

import org.flinkbridge.protocol.ErrorTexts;
import org.flinkbridge.protocol.InputFailures;
import org.flinkbridge.records.BridgeRecord;

import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/**
 * What a record a dead-letter step failed on becomes: the record as the segment received it (payload, timestamp
 * and headers), with headers naming where and how it failed.
 */
public final class DeadLetters implements Serializable {

    public static final String PIPELINE = "flink-bridge.dead-letter.pipeline";
    public static final String SEGMENT = "flink-bridge.dead-letter.segment";
    public static final String STEP = "flink-bridge.dead-letter.step";
    public static final String ERROR_CLASS = "flink-bridge.dead-letter.error-class";
    public static final String ERROR_MESSAGE = "flink-bridge.dead-letter.error-message";
    public static final String TIME = "flink-bridge.dead-letter.time";
    /** The most UTF-8 bytes of the error's message a dead letter carries (a Kafka header travels with each record). */
    public static final int MAX_MESSAGE_BYTES = 1024;

    private final String pipeline;
    private final String segment;

    public DeadLetters(String pipeline, String segment) {
        this.pipeline = pipeline;
        this.segment = segment;
    }

    /** @param attemptMillis when the failure came back, in ms since the epoch (the bridge's clock) */
    BridgeRecord letter(BridgeRecord input, InputFailures.Failure failure, long attemptMillis) {
        Map<String, String> headers = new HashMap<>(input.headers);
        headers.put(PIPELINE, pipeline);
        headers.put(SEGMENT, segment);
        headers.put(STEP, failure.step());
        headers.put(ERROR_CLASS, failure.errorClass());
        headers.put(ERROR_MESSAGE, ErrorTexts.cut(failure.message(), MAX_MESSAGE_BYTES));
        headers.put(TIME, Long.toString(attemptMillis));
        return new BridgeRecord(input.payload, headers, input.timestamp);
    }
}
