package org.flinkbridge.transport.grpc;

import com.google.protobuf.ByteString;
import org.flinkbridge.proto.compat.Message;
import org.flinkbridge.proto.data.Frame;
import org.flinkbridge.proto.data.FrameBatch;
import org.flinkbridge.proto.data.FrameType;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FrameBatchesTest {

    @Test
    void aBatchWithinTheLimitGoesWhole() {
        FrameBatch batch = FrameBatch.newBuilder().addFrames(output(0, 1000)).build();
        List<FrameBatch> parts = FrameBatches.split(batch);
        assertEquals(1, parts.size());
        assertSame(batch, parts.getFirst());
    }

    /** A step answering 64 inputs with 1 MiB each: 64 MiB, over gRPC's limit as one message. */
    @Test
    void largeAnswersGoInPartsOfAtMostTheLimitPlusAFrameInOrder() {
        FrameBatch.Builder answers = FrameBatch.newBuilder();
        for (int i = 0; i < 64; i++) {
            answers.addFrames(output(i, 1 << 20));
            answers.addFrames(Frame.newBuilder().setType(FrameType.END_OF_OUTPUTS).setSequence(i));
        }
        FrameBatch batch = answers.build();

        List<FrameBatch> parts = FrameBatches.split(batch);

        assertTrue(parts.size() >= 16, parts.size() + " parts");
        for (FrameBatch part : parts) {
            assertTrue(part.getSerializedSize() <= GrpcChannels.MESSAGE_BUDGET_BYTES + (1 << 20) + 64,
                    part.getSerializedSize() + " bytes");
        }
        assertEquals(batch.getFramesList(), parts.stream().flatMap(part -> part.getFramesList().stream()).toList());
    }

    private static Frame output(int sequence, int payloadBytes) {
        return Frame.newBuilder().setType(FrameType.OUTPUT).setSequence(sequence)
                .setRecord(Message.newBuilder().setPayload(ByteString.copyFrom(new byte[payloadBytes]))).build();
    }
}
