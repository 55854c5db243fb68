package org.flinkbridge.transport.grpc;

import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;

import java.util.ArrayList;
import java.util.List;

/**
 * A batch of the streamed data plane is cut once it holds {@link GrpcChannels#MESSAGE_BUDGET_BYTES}, on either
 * side, so large records never make a message over gRPC's limit: a batch holds at most that plus one frame.
 */
public final class FrameBatches {

    private FrameBatches() {}

    /** The batch as it goes on the stream: itself, or parts of it in order, each cut once it holds the budget. */
    public static List<FrameBatch> split(FrameBatch batch) {
        if (batch.getSerializedSize() <= GrpcChannels.MESSAGE_BUDGET_BYTES) {
            return List.of(batch);
        }
        List<FrameBatch> parts = new ArrayList<>();
        FrameBatch.Builder part = FrameBatch.newBuilder();
        long bytes = 0;
        for (Frame frame : batch.getFramesList()) {
            part.addFrames(frame);
            bytes += frame.getSerializedSize();
            if (bytes >= GrpcChannels.MESSAGE_BUDGET_BYTES) {
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
