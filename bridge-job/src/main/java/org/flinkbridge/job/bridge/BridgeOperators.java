package org.flinkbridge.job.bridge;

import org.apache.flink.datastream.impl.operators.KeyedProcessOperator;
import org.apache.flink.datastream.impl.operators.ProcessOperator;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.flinkbridge.job.BridgeRecord;

/**
 * Flink's own DataStream V2 process operators, keyed and not, for a {@link BridgeFunction}: once the function
 * is open they also hand it a mailbox executor of its task, which the V2 function API does not expose, so the
 * worker's answers can be taken on the task thread as they arrive (as Flink's async I/O operator does).
 */
final class BridgeOperators {

    private BridgeOperators() {}

    /** Gives the function a mailbox executor at its operator's place in the chain, as Flink makes them. */
    private static void handMailbox(AbstractStreamOperator<?> operator, BridgeFunction function) {
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
            handMailbox(this, (BridgeFunction) userFunction);
        }
    }

    static final class Keyed<K> extends KeyedProcessOperator<K, BridgeRecord, BridgeRecord> {
        Keyed(BridgeFunction function) {
            super(function);
        }

        @Override
        public void open() throws Exception {
            super.open();
            handMailbox(this, (BridgeFunction) userFunction);
        }
    }
}
