package org.flinkbridge.bridge.function;

import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.impl.operators.KeyedProcessOperator;
import org.apache.flink.datastream.impl.operators.ProcessOperator;
import org.apache.flink.runtime.state.KeyedStateBackend;
import org.apache.flink.runtime.state.StateInitializationContext;
import org.apache.flink.runtime.state.StateSnapshotContext;
import org.apache.flink.runtime.state.v2.adaptor.AsyncKeyedStateBackendAdaptor;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.Output;
import org.apache.flink.streaming.runtime.streamrecord.StreamRecord;
import org.flinkbridge.records.BridgeRecord;

/**
 * Flink's own DataStream V2 process operators, keyed and not, for a {@link BridgeFunction}: they also hand it what
 * the V2 function API does not expose: before it opens, where its journal's memory is counted (the operator's
 * share of the slot's managed memory, {@link ManagedJournalMemory}) and the operator's runtime context, whose
 * accumulators hold the job's counts; once it is open, a mailbox executor of its
 * task, so the worker's answers can be taken on the task thread as they arrive (as Flink's async I/O operator
 * does), and the operator's output, for a subtask whose input ends before any record or watermark came.
 */
final class BridgeOperators {

    private BridgeOperators() {}

    /** Gives the function, before it opens, what it counts in: its journal's memory, the job's accumulators. */
    private static void handCounting(AbstractStreamOperator<BridgeRecord> operator, BridgeFunction function) {
        function.countJournalIn(ManagedJournalMemory.of(operator));
        function.countJobIn(operator.getRuntimeContext());
    }

    /**
     * Gives the function its operator's outputs (main and dead letters) and a mailbox executor at the operator's
     * place in the chain.
     */
    private static void handOver(AbstractStreamOperator<BridgeRecord> operator, BridgeFunction function,
                                 Collector<BridgeRecord> output, Output<StreamRecord<BridgeRecord>> operatorOutput) {
        function.emitThrough(output, letter ->
                operatorOutput.collect(BridgeStreams.DEAD_LETTERS, new StreamRecord<>(letter, letter.timestamp)));
        function.takeAnswersAsTheyArrive(operator.getContainingTask().getMailboxExecutorFactory()
                .createExecutor(operator.getOperatorConfig().getChainIndex()));
    }

    static final class NonKeyed extends ProcessOperator<BridgeRecord, BridgeRecord> {
        NonKeyed(BridgeFunction function) {
            super(function);
        }

        @Override
        public void initializeState(StateInitializationContext context) throws Exception {
            super.initializeState(context);
            handCounting(this, (BridgeFunction) userFunction);
        }

        @Override
        public void open() throws Exception {
            super.open();
            handOver(this, (BridgeFunction) userFunction, outputCollector, output);
        }
    }

    /**
     * The keyed operator also keeps the worker's state by key group in raw keyed state, and keeps no set of the
     * keys it has seen.
     */
    static final class Keyed<K> extends KeyedProcessOperator<K, BridgeRecord, BridgeRecord> {
        Keyed(BridgeFunction function) {
            super(function);
        }

        @Override
        public void initializeState(StateInitializationContext context) throws Exception {
            super.initializeState(context);
            handCounting(this, (BridgeFunction) userFunction);
            ((BridgeFunction) userFunction).restoreKeyedWorkerState(
                    KeyGroupStateStream.read(context.getRawKeyedStateInputs()));
            ((BridgeFunction) userFunction).keepCellsIn(synchronousBackend(), (KeySelector<BridgeRecord, ?>)
                    (KeySelector<?, ?>) getStateKeySelector1(), getProcessingTimeService());
        }

        /**
         * The backend cells are read from and written to on the task thread: the V2 keyed operator works on the
         * asynchronous state API, which for a backend without asynchronous access of its own (RocksDB, the heap) wraps
         * the synchronous one. ForSt has asynchronous access of its own, so this operator gets ForSt's asynchronous
         * backend only: its synchronous one goes to operators that do not process state asynchronously, which a V2
         * operator cannot be (its base requires an asynchronous backend as it initialises its state). A session with
         * cells then fails, naming it.
         */
        private KeyedStateBackend<?> synchronousBackend() {
            if (stateHandler.getAsyncKeyedStateBackend() instanceof AsyncKeyedStateBackendAdaptor<?> adaptor) {
                return adaptor.getKeyedStateBackend();
            }
            return stateHandler.getKeyedStateBackend();
        }

        @Override
        public void open() throws Exception {
            super.open();
            handOver(this, (BridgeFunction) userFunction, outputCollector, output);
        }

        @Override
        public void snapshotState(StateSnapshotContext context) throws Exception {
            super.snapshotState(context);
            KeyGroupStateStream.write(context.getRawKeyedOperatorStateOutput(),
                    ((BridgeFunction) userFunction).takeKeyedWorkerState());
        }

        /**
         * Also closes the execution controller of the asynchronous state API, which Flink's keyed operator leaves
         * open (2.2.1): closing it cancels its buffer's periodic timeout check on Flink's JVM-wide scheduler, whose
         * task would otherwise keep this operator, its function and the session (resident keys, journal, rings)
         * reachable for as long as the TaskManager runs, after the job ended.
         */
        @Override
        public void close() throws Exception {
            try {
                super.close();
            } finally {
                if (asyncExecutionController != null) {
                    asyncExecutionController.close();
                }
            }
        }

        /** Flink's own timers then keep to the backend's managed state (RocksDB's default, the heap's always). */
        @Override
        protected boolean isUsingCustomRawKeyedState() {
            return true;
        }

        /**
         * Keeps nothing: the V2 operator would add every key it has ever seen to a heap set, for
         * {@code applyToAllPartitions}, which the bridge never calls, so a TaskManager's heap would grow with the
         * number of distinct keys whatever the state.
         */
        @Override
        public void newKeySelected(Object newKey) {}
    }
}
