package org.flinkbridge.worker;

import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.protocol.RecordCodec;
import org.flinkbridge.transport.grpc.RecordMessages;
import org.flinkbridge.worker.sdk.Record;

import java.util.Map;

/** The SDK's {@link Record} from and to its form on the wire, for every transport. */
final class WireRecords {

    private WireRecords() {}

    /** A {@code RecordSink} of the SDK's records, for {@code RecordCodec} and {@link RecordMessages}. */
    static Record record(long timestamp, Map<String, String> headers, byte[] payload) {
        return new Record(payload, headers, timestamp);
    }

    static Record record(Message message) {
        return RecordMessages.read(message, WireRecords::record);
    }

    static Message message(Record record) {
        return RecordMessages.message(record.timestamp(), record.headers(), record.payload());
    }
}
