package org.flinkbridge.pipeline;

import java.io.Serializable;

/**
 * How the job talks to the worker. Command-line flags override the file through {@link #overriddenBy}.
 *
 * @param workerAddress        a running worker's control address, or {@code null} to spawn one
 * @param key                  what to key the stream by before the first segment, or {@code null} for no keyBy
 * @param maxInFlight          inputs sent to the worker and not yet answered, per session
 * @param checkpointIntervalMs 0 turns checkpointing off
 * @param acceptAtLeastOnce    runs steps that may keep state over the prototype's service (grpc_mode compat)
 *                             with checkpointing on, which cannot be exactly-once (see {@link Pipeline})
 * @param worker               the worker runtime a TaskManager spawns when {@code workerAddress} is null
 * @param workerRecovery       what a lost worker leads to: recovery in place, or the task's failure
 * @param workerRestartTimeoutMs how long recovery in place waits for a new worker (spawned, or at its address)
 */
public record BridgeSettings(
        TransportMode transport,
        String workerAddress,
        KeySpec key,
        int parallelism,
        int maxInFlight,
        long workerTimeoutMs,
        long checkpointIntervalMs,
        boolean acceptAtLeastOnce,
        WorkerLanguage worker,
        WorkerRecovery workerRecovery,
        long workerRestartTimeoutMs) implements Serializable {

    public static final TransportMode DEFAULT_TRANSPORT = TransportMode.SHM;
    public static final WorkerLanguage DEFAULT_WORKER = WorkerLanguage.JAVA;
    public static final int DEFAULT_PARALLELISM = 1;
    public static final int DEFAULT_MAX_IN_FLIGHT = 1024;
    public static final long DEFAULT_WORKER_TIMEOUT_MS = 30_000;
    public static final long DEFAULT_CHECKPOINT_INTERVAL_MS = 0;
    public static final WorkerRecovery DEFAULT_WORKER_RECOVERY = WorkerRecovery.IN_PLACE;
    public static final long DEFAULT_WORKER_RESTART_TIMEOUT_MS = 30_000;
    /** Flink refuses shorter checkpoint intervals. */
    public static final long MIN_CHECKPOINT_INTERVAL_MS = 10;

    public BridgeSettings {
        if (transport == null || worker == null || workerRecovery == null) {
            throw new IllegalArgumentException("transport, worker and worker recovery must not be null");
        }
        if (workerAddress != null) {
            Checks.nonBlank(workerAddress, "worker address");
        }
        Checks.atLeast(parallelism, 1, "parallelism");
        Checks.atLeast(maxInFlight, 1, "max in flight");
        Checks.atLeast(workerTimeoutMs, 1, "worker timeout");
        Checks.atLeast(workerRestartTimeoutMs, 1, "worker restart timeout");
        if (checkpointIntervalMs != 0) {
            Checks.atLeast(checkpointIntervalMs, MIN_CHECKPOINT_INTERVAL_MS, "checkpoint interval (unless 0)");
        }
    }

    /** The settings of a file without a {@code bridge} section. */
    public static BridgeSettings defaults() {
        return new BridgeSettings(DEFAULT_TRANSPORT, null, null, DEFAULT_PARALLELISM,
                DEFAULT_MAX_IN_FLIGHT, DEFAULT_WORKER_TIMEOUT_MS, DEFAULT_CHECKPOINT_INTERVAL_MS, false,
                DEFAULT_WORKER, DEFAULT_WORKER_RECOVERY, DEFAULT_WORKER_RESTART_TIMEOUT_MS);
    }

    /**
     * These settings with the command line's overrides: the transport {@code newTransport}, and each of the others
     * that is not {@code null}.
     *
     * @param newWorkerAddress a running worker's control address, or {@code null} to keep the file's
     */
    public BridgeSettings overriddenBy(TransportMode newTransport, String newWorkerAddress, WorkerLanguage newWorker,
                                       Integer newParallelism) {
        return new BridgeSettings(newTransport, newWorkerAddress != null ? newWorkerAddress : workerAddress, key,
                newParallelism != null ? newParallelism : parallelism, maxInFlight, workerTimeoutMs,
                checkpointIntervalMs, acceptAtLeastOnce, newWorker != null ? newWorker : worker, workerRecovery,
                workerRestartTimeoutMs);
    }
}
