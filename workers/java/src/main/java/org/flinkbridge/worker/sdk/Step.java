package org.flinkbridge.worker.sdk;

/**
 * Application logic run by a worker: one instance per pipeline step and session, always called from one
 * thread at a time and strictly in input order.
 *
 * <p>An exception from {@link #process} fails that input: the bridge fails the Flink task naming the
 * session and the cause, and Flink restarts from the last checkpoint. Nothing is dropped silently.
 *
 * <p>Implementations are loaded by built-in type name or by fully qualified class name and need a public
 * no-argument constructor.
 */
public interface Step extends AutoCloseable {

    /** Called once before any record, with the step's configuration. */
    default void open(StepContext context) throws Exception {}

    /** Processes one input into zero or more outputs. */
    void process(Record input, Emitter output) throws Exception;

    /**
     * Event time has advanced to {@code timestamp}. {@link Long#MAX_VALUE} means the input has ended:
     * emit everything still held.
     */
    default void onWatermark(long timestamp, Emitter output) throws Exception {}

    /**
     * A timer this step set ({@link StepContext#timers}) fires: the timer of the current key at {@code timestamp} in
     * {@code domain}, gone once it fired. While it runs, the step's cells are that key's and it may set and delete
     * that key's timers again; what it emits goes through the steps after it, as its outputs for a record do. An
     * exception fails the session whatever the step's {@code on_error}: a firing is no record to send aside.
     */
    default void onTimer(long timestamp, TimeDomain domain, Emitter output) throws Exception {}

    /**
     * The state to keep in the Flink checkpoint; an empty array for a stateless step. Called once every
     * earlier input is processed and before any later one. On a keyed stream the runtime keeps one instance
     * per Flink key group, so an instance's state is that of its key group's keys.
     */
    default byte[] snapshotState() throws Exception {
        return new byte[0];
    }

    /** Restores what {@link #snapshotState} returned, before the first record after a restart. */
    default void restoreState(byte[] state) throws Exception {}

    /** The checkpoint that last took this step's state is complete (for side effects to commit). */
    default void onCheckpointCompleted(long checkpointId) throws Exception {}

    /** A checkpoint was aborted: its state will not be used. */
    default void onCheckpointAborted(long checkpointId) throws Exception {}

    @Override
    default void close() throws Exception {}
}
