package org.flinkbridge.bridge.function;

import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.datastream.impl.operators.BaseKeyedProcessOperator;
import org.apache.flink.runtime.checkpoint.OperatorSubtaskState;
import org.apache.flink.runtime.state.KeyGroupRange;
import org.apache.flink.runtime.state.KeyGroupRangeAssignment;
import org.apache.flink.runtime.state.KeyGroupsStateHandle;
import org.apache.flink.runtime.state.KeyedStateHandle;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.apache.flink.streaming.util.AbstractStreamOperatorTestHarness;
import org.apache.flink.streaming.util.asyncprocessing.AsyncKeyedOneInputStreamOperatorTestHarness;
import org.flinkbridge.bridge.session.SessionSpec;
import org.flinkbridge.records.BridgeRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import java.lang.reflect.Field;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A keyed segment's state lives in Flink's keyed state: the operator keeps no set of the keys it has seen, the
 * operator state holds none of the worker's state, a job restored at a higher parallelism gives each subtask only
 * the key groups it owns, and each key's count goes on where it stopped (a real Java worker's {@code running_count},
 * whose counts are cells in a keyed session, loaded again after Flink's own restore path on the harness's heap
 * backend; whole-instance state by key group in raw keyed state is restored by WorkerLanguagesTest's prototype
 * segments).
 */
class KeyedWorkerStateTest {

    private static final int MAX_PARALLELISM = 128;
    private static final int KEYS = 40;
    @RegisterExtension
    static final JavaWorkerProcess WORKER = new JavaWorkerProcess();

    @Test
    void workerStateIsKeptByKeyGroupAndFollowsItsKeysToAHigherParallelism() throws Exception {
        OperatorSubtaskState checkpoint;
        BridgeOperators.Keyed<String> operator = new BridgeOperators.Keyed<>(
                new BridgeFunction(sessionSpec(), true, false, false));
        try (var harness = harness(operator, 1, 0)) {
            harness.open();
            for (int round = 0; round < 2; round++) {
                for (int key = 0; key < KEYS; key++) {
                    harness.processElement(record("k" + key));
                }
            }
            // The first checkpoint holds back the outputs of the inputs before it, emitted once it completes;
            // the second, with no input in between, holds nothing but the worker's state.
            harness.snapshot(1, 1);
            harness.notifyOfCompletedCheckpoint(1);
            checkpoint = harness.snapshot(2, 2);
            assertEquals(2 * KEYS, harness.extractOutputValues().size());
            Field keySet = BaseKeyedProcessOperator.class.getDeclaredField("keySet");
            keySet.setAccessible(true);
            assertEquals(Set.of(), keySet.get(operator), "the operator keeps the keys it has seen on the heap");
        }
        assertTrue(checkpoint.getManagedOperatorState().stream().allMatch(handle -> handle.getStateSize() < 1024),
                "the worker's state went into operator state: " + checkpoint.getManagedOperatorState());
        assertFalse(checkpoint.getRawKeyedState().isEmpty(), "no raw keyed state was written");

        Map<String, Long> counts = new HashMap<>();
        Set<Integer> keysSeen = new TreeSet<>();
        for (int subtask = 0; subtask < 2; subtask++) {
            KeyGroupRange owned =
                    KeyGroupRangeAssignment.computeKeyGroupRangeForOperatorIndex(MAX_PARALLELISM, 2, subtask);
            OperatorSubtaskState part = AbstractStreamOperatorTestHarness.repartitionOperatorState(
                    checkpoint, MAX_PARALLELISM, 1, 2, subtask);
            for (KeyedStateHandle handle : part.getRawKeyedState()) {
                KeyGroupRange read = ((KeyGroupsStateHandle) handle).getKeyGroupRange();
                assertEquals(read, owned.getIntersection(read),
                        "subtask " + subtask + " is handed key groups " + read + " beyond its " + owned);
            }
            try (var harness = harness(new BridgeOperators.Keyed<>(
                    new BridgeFunction(sessionSpec(), true, false, false)), 2, subtask)) {
                harness.initializeState(part);
                harness.open();
                for (int key = 0; key < KEYS; key++) {
                    int keyGroup = KeyGroupRangeAssignment.assignToKeyGroup("k" + key, MAX_PARALLELISM);
                    if (owned.contains(keyGroup)) {
                        harness.processElement(record("k" + key));
                        keysSeen.add(key);
                    }
                }
                harness.endInput();
                for (BridgeRecord output : harness.extractOutputValues()) {
                    String json = new String(output.payload, StandardCharsets.UTF_8);
                    counts.put(output.headers.get("key"), Long.parseLong(json.replaceAll(".*\"count\":(\\d+).*", "$1")));
                }
            }
        }
        assertEquals(KEYS, keysSeen.size(), "every key belongs to one of the two subtasks");
        for (int key = 0; key < KEYS; key++) {
            assertEquals(3L, counts.get("k" + key), "key k" + key + " did not go on from its restored count");
        }
    }

    /** The V2 keyed operator runs in Flink's key-ordered asynchronous mode, which this harness drives. */
    private static AsyncKeyedOneInputStreamOperatorTestHarness<String, BridgeRecord, BridgeRecord> harness(
            BridgeOperators.Keyed<String> operator, int parallelism, int subtask) throws Exception {
        return AsyncKeyedOneInputStreamOperatorTestHarness.create(operator,
                record -> record.headers.get("key"), Types.STRING, MAX_PARALLELISM, parallelism, subtask);
    }

    private static StreamRecord<BridgeRecord> record(String key) {
        return new StreamRecord<>(new BridgeRecord("{}".getBytes(StandardCharsets.UTF_8), Map.of("key", key), 1), 1);
    }

    private static SessionSpec sessionSpec() {
        return WORKER.sessionSpec("keyed-worker-state",
                new SessionSpec.Step("count", "running_count", "{\"key_header\":\"key\"}"),
                SessionSpec.Recovery.defaults());
    }
}
