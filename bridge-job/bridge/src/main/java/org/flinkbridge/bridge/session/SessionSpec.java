package org.flinkbridge.bridge.session;

import org.flinkbridge.bridge.BridgeOptions;
import org.flinkbridge.pipeline.BridgeSettings;
import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.pipeline.WorkerRecovery;
import org.flinkbridge.protocol.BuiltInStep;
import org.flinkbridge.proto.control.OnError;
import org.flinkbridge.proto.control.StepSpec;

import java.io.Serializable;
import java.util.List;

/**
 * Everything a bridge function needs to open its session, shipped with the function to the TaskManager.
 *
 * @param workerAddress a running worker's HOST:PORT, or null to spawn one with {@code workerCommand}
 * @param allowPlaintextRemote whether {@code workerAddress} may leave this host ({@link WorkerAddressCheck})
 * @param workerCommand the command that starts a worker printing its listening line (spawn mode)
 * @param shm the ring settings, used when {@code mode} is {@link TransportMode#SHM}
 * @param recovery what a lost worker leads to
 * @param maxSnapshotBytes the most state a worker may hand over at one checkpoint
 *                         ({@link BridgeOptions#MAX_SNAPSHOT_SIZE})
 * @param keyed whether the session's stream is keyed: its records carry their key, and its steps may keep cells
 * @param cellsBudgetBytes the most bytes of cells the worker holds for the session ({@link BridgeOptions#CELLS_BUDGET})
 */
public record SessionSpec(
        String jobName,
        int segmentId,
        String segmentName,
        List<Step> steps,
        TransportMode mode,
        String workerAddress,
        boolean allowPlaintextRemote,
        List<String> workerCommand,
        int maxInFlight,
        long workerTimeoutMillis,
        int maxBatchFrames,
        ShmSettings shm,
        Recovery recovery,
        long maxSnapshotBytes,
        boolean keyed,
        long cellsBudgetBytes) implements Serializable {

    public SessionSpec {
        steps = List.copyOf(steps);
        workerCommand = List.copyOf(workerCommand);
    }

    /** A session whose stream is not keyed. */
    public SessionSpec(String jobName, int segmentId, String segmentName, List<Step> steps, TransportMode mode,
                       String workerAddress, boolean allowPlaintextRemote, List<String> workerCommand, int maxInFlight,
                       long workerTimeoutMillis, int maxBatchFrames, ShmSettings shm, Recovery recovery,
                       long maxSnapshotBytes) {
        this(jobName, segmentId, segmentName, steps, mode, workerAddress, allowPlaintextRemote, workerCommand,
                maxInFlight, workerTimeoutMillis, maxBatchFrames, shm, recovery, maxSnapshotBytes, false,
                BridgeOptions.CELLS_BUDGET.defaultValue().getBytes());
    }

    /** The same session, keyed or not. */
    public SessionSpec withKeyed(boolean isKeyed) {
        return with(isKeyed, cellsBudgetBytes);
    }

    /** The same session, its worker holding at most {@code bytes} of cells ({@link BridgeOptions#CELLS_BUDGET}). */
    public SessionSpec withCellsBudget(long bytes) {
        return with(keyed, bytes);
    }

    private SessionSpec with(boolean isKeyed, long budgetBytes) {
        return new SessionSpec(jobName, segmentId, segmentName, steps, mode, workerAddress, allowPlaintextRemote,
                workerCommand, maxInFlight, workerTimeoutMillis, maxBatchFrames, shm, recovery, maxSnapshotBytes,
                isKeyed, budgetBytes);
    }

    /**
     * One step of the segment: its name, type and config as JSON, and whether a record it fails on goes to the
     * dead letters (else it fails the task).
     */
    public record Step(String name, String type, String configJson, boolean deadLetter) implements Serializable {
        /** A step whose failures fail the task. */
        public Step(String name, String type, String configJson) {
            this(name, type, configJson, false);
        }

        /** The step as the control service describes it to a worker. */
        public StepSpec toProto() {
            return StepSpec.newBuilder().setName(name).setType(type).setConfigJson(configJson)
                    .setOnError(deadLetter ? OnError.ON_ERROR_DEAD_LETTER : OnError.ON_ERROR_FAIL).build();
        }
    }

    /** The names of the steps whose failed records go to the dead letters. */
    public List<String> deadLetterSteps() {
        return steps.stream().filter(Step::deadLetter).map(Step::name).toList();
    }

    /** The names of the steps of type {@code window}, whose late records the bridge counts. */
    public List<String> windowSteps() {
        return steps.stream().filter(step -> BuiltInStep.WINDOW.typeName().equals(step.type())).map(Step::name)
                .toList();
    }

    /**
     * Whether a step closes by processing time in a keyed session: a {@code batch}, whose {@code max_wait_ms}
     * counts from its first record's arrival. (A user step's timers are not known before its session opens.)
     */
    public boolean closesByProcessingTime() {
        return steps.stream().anyMatch(step -> BuiltInStep.BATCH.typeName().equals(step.type()));
    }

    /**
     * What a lost worker leads to.
     *
     * @param mode recovery in place, or the task's failure
     * @param restartTimeoutMillis how long recovery in place waits for a new worker
     * @param journalBytes the bound of the off-heap journal of inputs since the last barrier, per session
     * @param standby whether a spawned worker has a standby process behind it, to take over when it is lost
     */
    public record Recovery(WorkerRecovery mode, long restartTimeoutMillis, long journalBytes, boolean standby)
            implements Serializable {

        /** The defaults of a pipeline's bridge section and of the deployment options. */
        public static Recovery defaults() {
            return new Recovery(BridgeSettings.DEFAULT_WORKER_RECOVERY, BridgeSettings.DEFAULT_WORKER_RESTART_TIMEOUT_MS,
                    BridgeOptions.JOURNAL_SIZE.defaultValue().getBytes(), BridgeOptions.WORKER_STANDBY.defaultValue());
        }

        /** Failing the task at once, with no journal: what compat mode, which keeps no state, always gets. */
        public static Recovery failover() {
            return new Recovery(WorkerRecovery.FAILOVER, 1, 0, false);
        }

        public boolean inPlace() {
            return mode == WorkerRecovery.IN_PLACE;
        }

        /** The same without a standby worker process. */
        public Recovery withoutStandby() {
            return new Recovery(mode, restartTimeoutMillis, journalBytes, false);
        }
    }

    /**
     * The shared-memory transport's settings.
     *
     * @param directory where ring files are made (a private 0700 directory is created inside it if needed)
     * @param ringCapacity bytes of each of the session's two rings (a power of two)
     * @param livenessTimeoutMillis how long a side's heartbeat may be silent before the other gives up
     */
    public record ShmSettings(String directory, int ringCapacity, long livenessTimeoutMillis) implements Serializable {

        /** The deployment options' defaults. */
        public static ShmSettings defaults() {
            return new ShmSettings(BridgeOptions.SHM_DIRECTORY.defaultValue(),
                    (int) BridgeOptions.SHM_RING_CAPACITY.defaultValue().getBytes(),
                    BridgeOptions.LIVENESS_TIMEOUT.defaultValue().toMillis());
        }
    }
}
