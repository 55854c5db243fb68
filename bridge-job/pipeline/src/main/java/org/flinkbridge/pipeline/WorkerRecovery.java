package org.flinkbridge.pipeline;

/**
 * What the bridge does when a session's worker dies or misses its deadline: {@code in_place} gets a worker
 * again (respawned, or waited for at its address), restores the state it took at the last barrier and replays
 * the inputs sent since, checking that the replayed outputs match those already emitted, so the job goes on
 * without a restart; {@code failover} fails the task, and Flink restores the job from its last checkpoint.
 * In-place recovery falls back to failover whenever it cannot be sure of the result.
 */
public enum WorkerRecovery {
    IN_PLACE, FAILOVER;

    /** The name in pipeline files, e.g. {@code in_place}. */
    public String configName() {
        return ConfigNames.of(this);
    }

    /** @throws IllegalArgumentException naming the allowed names */
    public static WorkerRecovery parse(String name) {
        return ConfigNames.parse(WorkerRecovery.class, name);
    }
}
