package org.flinkbridge.transport.grpc;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;

/** Binds a data stream to its session: the bridge sends the session id and token as call metadata. */
public final class SessionMetadata {

    public static final Metadata.Key<String> SESSION_ID =
            Metadata.Key.of("flink-bridge-session", Metadata.ASCII_STRING_MARSHALLER);
    public static final Metadata.Key<String> TOKEN =
            Metadata.Key.of("flink-bridge-token", Metadata.ASCII_STRING_MARSHALLER);

    static final Context.Key<String> SESSION_ID_CONTEXT = Context.key("flink-bridge-session");
    static final Context.Key<String> TOKEN_CONTEXT = Context.key("flink-bridge-token");

    private SessionMetadata() {}

    static Metadata headers(String sessionId, String token) {
        Metadata headers = new Metadata();
        headers.put(SESSION_ID, sessionId);
        headers.put(TOKEN, token);
        return headers;
    }

    /** Server side: copies the metadata into the call's context, where the stream service reads it. */
    public static ServerInterceptor serverInterceptor() {
        return new ServerInterceptor() {
            @Override
            public <Q, R> ServerCall.Listener<Q> interceptCall(
                    ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
                Context context = Context.current()
                        .withValue(SESSION_ID_CONTEXT, headers.get(SESSION_ID))
                        .withValue(TOKEN_CONTEXT, headers.get(TOKEN));
                return Contexts.interceptCall(context, call, headers, next);
            }
        };
    }
}
