package org.flinkbridge.bridge.session;

import org.flinkbridge.proto.control.TransportKind;
import org.flinkbridge.protocol.SessionTokens;

import java.io.IOException;

/** Records in batched frames over one bidirectional gRPC stream per session, beside the control calls. */
final class GrpcStreamTransport implements SessionTransport {

    static final GrpcStreamTransport INSTANCE = new GrpcStreamTransport();

    private GrpcStreamTransport() {}

    @Override
    public TransportSession open(SessionOpening opening) throws IOException {
        SessionSpec spec = opening.spec();
        String token = SessionTokens.random();
        return ControlServiceSession.open(opening, TransportKind.TRANSPORT_KIND_GRPC, null, token,
                (sessionId, name) -> new GrpcStreamChannel(opening.grpc(), sessionId, token, name,
                        spec.maxBatchFrames(), spec.workerTimeoutMillis()), "gRPC");
    }

    @Override
    public boolean recoversInPlace() {
        return true;
    }
}
