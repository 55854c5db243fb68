package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.protocol.RecordSink;

import java.util.Map;

/** A record's form on the gRPC transports: the prototype's {@code Message}, for both sides. */
public final class RecordMessages {

    private RecordMessages() {}

    public static Message message(long timestamp, Map<String, String> headers, byte[] payload) {
        return Message.newBuilder()
                .setTimestamp(timestamp)
                .putAllHeaders(headers)
                .setPayload(ByteString.copyFrom(payload))
                .build();
    }

    public static <T> T read(Message message, RecordSink<T> sink) {
        return sink.record(message.getTimestamp(), message.getHeadersMap(), message.getPayload().toByteArray());
    }
}
