package org.flinkbridge.worker;

import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;

import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.LongAdder;

/** Counts the bytes each gRPC method receives, as the health answer reports them. */
final class TrafficCounter extends ServerStreamTracer.Factory {

    private final Map<String, LongAdder> receivedBytes = new ConcurrentHashMap<>();

    @Override
    public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
        LongAdder bytes = receivedBytes.computeIfAbsent(fullMethodName, name -> new LongAdder());
        return new ServerStreamTracer() {
            @Override
            public void inboundWireSize(long size) {
                bytes.add(size);
            }
        };
    }

    /** Bytes received so far, by full method name. */
    Map<String, Long> receivedBytes() {
        Map<String, Long> snapshot = new TreeMap<>();
        receivedBytes.forEach((method, bytes) -> snapshot.put(method, bytes.sum()));
        return snapshot;
    }
}
