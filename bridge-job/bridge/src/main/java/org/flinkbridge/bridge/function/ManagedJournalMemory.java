package org.flinkbridge.bridge.function;

import org.apache.flink.core.memory.ManagedMemoryUseCase;
import org.apache.flink.runtime.memory.MemoryManager;
import org.apache.flink.runtime.memory.MemoryReservationException;
import org.apache.flink.streaming.api.operators.AbstractStreamOperator;
import org.apache.flink.streaming.api.operators.StreamingRuntimeContext;
import org.flinkbridge.bridge.journal.JournalMemory;

/**
 * A session's journal counted in Flink's memory model, as Flink counts its own operators' native memory: its bytes
 * are reserved from the slot's {@link MemoryManager} as the log grows and released as it is given back, within the
 * operator's share of the slot's managed memory (its use case {@link ManagedMemoryUseCase#OPERATOR}, which
 * {@link BridgeStreams} declares), which bounds the journal where it is smaller than its own bound.
 */
final class ManagedJournalMemory implements JournalMemory {

    /** How the failure of a task whose journal overflowed here names the bound. */
    static final String NAME = "the operator's share of the TaskManager's managed memory";

    private final MemoryManager memoryManager;
    private final long shareBytes;

    ManagedJournalMemory(MemoryManager memoryManager, long shareBytes) {
        this.memoryManager = memoryManager;
        this.shareBytes = shareBytes;
    }

    /** The share of {@code operator}: none when its graph declared no use case of managed memory for it. */
    static ManagedJournalMemory of(AbstractStreamOperator<?> operator) {
        StreamingRuntimeContext context = operator.getRuntimeContext();
        double fraction = operator.getOperatorConfig().getManagedMemoryFractionOperatorUseCaseOfSlot(
                ManagedMemoryUseCase.OPERATOR, context.getJobConfiguration(),
                context.getTaskManagerRuntimeInfo().getConfiguration(), context.getUserCodeClassLoader());
        MemoryManager memoryManager = operator.getContainingTask().getEnvironment().getMemoryManager();
        return new ManagedJournalMemory(memoryManager, fraction > 0 ? memoryManager.computeMemorySize(fraction) : 0);
    }

    @Override
    public long limitBytes() {
        return shareBytes;
    }

    @Override
    public boolean reserve(long bytes) {
        try {
            memoryManager.reserveMemory(this, bytes);
            return true;
        } catch (MemoryReservationException slotUsedUp) {
            return false;
        }
    }

    @Override
    public void release(long bytes) {
        memoryManager.releaseMemory(this, bytes);
    }
}
