package org.flinkbridge.bridge.session;

import org.flinkbridge.pipeline.TransportMode;
import org.flinkbridge.proto.control.StepSpec;

import java.io.Serializable;
import java.util.List;

/**
 * Everything a bridge function needs to open its session, shipped with the function to the TaskManager.
 *
 * @param workerAddress a running worker's HOST:PORT, or null to spawn one with {@code workerCommand}
 * @param workerCommand the command that starts a worker printing its listening line (spawn mode)
 * @param shm the ring settings, used when {@code mode} is {@link TransportMode#SHM}
 */
public record SessionSpec(
        String jobName,
        int segmentId,
        String segmentName,
        List<Step> steps,
        TransportMode mode,
        String workerAddress,
        List<String> workerCommand,
        int maxInFlight,
        long workerTimeoutMillis,
        int maxBatchFrames,
        ShmSettings shm) implements Serializable {

    public SessionSpec {
        steps = List.copyOf(steps);
        workerCommand = List.copyOf(workerCommand);
    }

    /** One step of the segment: its name, type and config as JSON. */
    public record Step(String name, String type, String configJson) implements Serializable {
        /** The step as the control service describes it to a worker. */
        public StepSpec toProto() {
            return StepSpec.newBuilder().setName(name).setType(type).setConfigJson(configJson).build();
        }
    }

    /**
     * The shared-memory transport's settings.
     *
     * @param directory where ring files are made (a private 0700 directory is created inside it if needed)
     * @param ringCapacity bytes of each of the session's two rings (a power of two)
     * @param livenessTimeoutMillis how long a side's heartbeat may be silent before the other gives up
     */
    public record ShmSettings(String directory, int ringCapacity, long livenessTimeoutMillis) implements Serializable {}
}
