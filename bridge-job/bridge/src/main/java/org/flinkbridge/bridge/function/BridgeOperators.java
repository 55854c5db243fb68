package org.flinkbridge.bridge.function;

import org.apache.flink.datastream.api.common.Collector;
import org.apache.flink.datastream.impl.operators.KeyedProcessOperator;
import org.apache.flink.datastream.impl.operators.ProcessOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.flinkbridge.records.BridgeRecord;

/**
 * Flink's own DataStream V2 process operators, keyed and not, for a {@link BridgeFunction}: once the function
 * is open they also hand it what the V2 function API does not expose: a mailbox executor of its task, so the
 * worker's answers can be taken on the task thread as they arrive (as Flink's async I/O operator does), and the
 * operator's output, for a subtask whose input ends before any record or watermark came.
 */
final class BridgeOperators {

    private BridgeOperators() {}

    /** Gives the function its operator's output and a mailbox executor at the operator's place in the chain. */
    private static void handOver(AbstractStreamOperator<?> operator, BridgeFunction function,
                                 Collector<BridgeRecord> output) {
        function.emitAtEndOfInputTo(output);
        function.takeAnswersAsTheyArrive(operator.getContainingTask().getMailboxExecutorFactory()
                .createExecutor(operator.getOperatorConfig().getChainIndex()));
    }

    static final class NonKeyed extends ProcessOperator<BridgeRecord, BridgeRecord> {
        NonKeyed(BridgeFunction function) {
            super(function);
        }

        @Override
        public void open() throws Exception {
            super.open();
            handOver(this, (BridgeFunction) userFunction, outputCollector);
        }
    }

    static final class Keyed<K> extends KeyedProcessOperator<K, BridgeRecord, BridgeRecord> {
        Keyed(BridgeFunction function) {
            super(function);
        }

        @Override
        public void open() throws Exception {
            super.open();
            handOver(this, (BridgeFunction) userFunction, outputCollector);
        }
    }
}
