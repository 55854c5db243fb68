package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.OneInputStreamOperator;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.KeyedOneInputStreamOperatorTestHarness;
import org.apache.flink.streaming.util.OneInputStreamOperatorTestHarness;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * A keyed subtask restored with outputs a checkpoint held back, that then gets no record and no watermark
 * before its input ends, still emits them: the V2 API would hand it a collector only for keys it has seen.
 */
class HeldOutputsTest {

    private static final int MAX_PARALLELISM = 128;
    @RegisterExtension
    static final JavaWorkerProcess WORKER = new JavaWorkerProcess();

    @Test
    void heldOutputsAreEmittedAtEndOfInputWithoutAnyRecord() throws Exception {
        BridgeRecord held = new BridgeRecord("held".getBytes(StandardCharsets.UTF_8), Map.of("h", "1"), 7);
        OperatorSubtaskState checkpoint = checkpointHolding(CheckpointEntries.output(0, held));

        BridgeFunction function = new BridgeFunction(sessionSpec(), true, false, false);
        try (KeyedOneInputStreamOperatorTestHarness<String, BridgeRecord, BridgeRecord> restored =
                     new KeyedOneInputStreamOperatorTestHarness<>(new BridgeOperators.Keyed<>(function),
                             record -> "k", Types.STRING, MAX_PARALLELISM, 1, 0)) {
            restored.initializeState(checkpoint);
            restored.open();

            restored.endInput();

            List<BridgeRecord> emitted = restored.extractOutputValues();
            assertEquals(1, emitted.size(), "the held output was not emitted");
            assertEquals("held", new String(emitted.getFirst().payload, StandardCharsets.UTF_8));
            assertEquals(Map.of("h", "1"), emitted.getFirst().headers);
        }
    }

    /** A checkpoint of the bridge's union list state holding {@code entries}, as a bridge function writes it. */
    private static OperatorSubtaskState checkpointHolding(byte[]... entries) throws Exception {
        try (OneInputStreamOperatorTestHarness<BridgeRecord, BridgeRecord> writer =
                     new OneInputStreamOperatorTestHarness<>(new EntriesWriter(List.of(entries)), MAX_PARALLELISM,
                             1, 0)) {
            writer.open();
            return writer.snapshot(1, 1);
        }
    }

    private static SessionSpec sessionSpec() {
        return WORKER.sessionSpec("held-outputs",
                new SessionSpec.Step("mark", "append_field", "{\"field\":\"seen\",\"value\":1}"),
                SessionSpec.Recovery.defaults());
    }

    /** Writes given entries into the bridge's union list state at a checkpoint. */
    private static final class EntriesWriter extends AbstractStreamOperator<BridgeRecord>
            implements OneInputStreamOperator<BridgeRecord, BridgeRecord> {
        private final List<byte[]> entries;
        private transient ListState<byte[]> state;

        EntriesWriter(List<byte[]> entries) {
            this.entries = entries;
        }

        @Override
        public void initializeState(StateInitializationContext context) throws Exception {
            super.initializeState(context);
            state = context.getOperatorStateStore().getUnionListState(CheckpointEntries.DESCRIPTOR);
        }

        @Override
        public void snapshotState(StateSnapshotContext context) throws Exception {
            super.snapshotState(context);
            state.update(entries);
        }

        @Override
        public void processElement(StreamRecord<BridgeRecord> element) {}
    }
}
