package org.flinkbridge.worker;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.worker.sdk.Record;

/** Converts between the wire's {@code Message} and the SDK's {@link Record}. */
final class Messages {

    private Messages() {}

    static Record toRecord(Message message) {
        return new Record(message.getPayload().toByteArray(), message.getHeadersMap(), message.getTimestamp());
    }

    static Message toMessage(Record record) {
        return Message.newBuilder()
                .setPayload(ByteString.copyFrom(record.payload()))
                .putAllHeaders(record.headers())
                .setTimestamp(record.timestamp())
                .build();
    }
}
