package org.flinkbridge.transport.grpc;

import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;

import java.util.ArrayList;
import java.util.List;

/** How many bytes one batch of the streamed data plane holds, on either side. */
public final class FrameBatches {

    /**
     * A batch is cut once it holds this many bytes, so large records never make a message over gRPC's limit
     * ({@link GrpcChannels#MAX_MESSAGE_BYTES}): a batch holds at most this plus one frame.
     */
    public static final int MAX_BYTES = 4 << 20;

    private FrameBatches() {}

    /** The batch as it goes on the stream: itself, or parts of it in order, each cut once it holds MAX_BYTES. */
    public static List<FrameBatch> split(FrameBatch batch) {
        if (batch.getSerializedSize() <= MAX_BYTES) {
            return List.of(batch);
        }
        List<FrameBatch> parts = new ArrayList<>();
        FrameBatch.Builder part = FrameBatch.newBuilder();
        long bytes = 0;
        for (Frame frame : batch.getFramesList()) {
            part.addFrames(frame);
            bytes += frame.getSerializedSize();
            if (bytes >= MAX_BYTES) {
                parts.add(part.build());
                part = FrameBatch.newBuilder();
                bytes = 0;
            }
        }
        if (part.getFramesCount() > 0) {
            parts.add(part.build());
        }
        return parts;
    }
}
