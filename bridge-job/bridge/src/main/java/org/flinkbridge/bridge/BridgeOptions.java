package org.flinkbridge.bridge;

import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.MemorySize;
import org.flinkbridge.transport.shm.RingFiles;

import java.time.Duration;

/**
 * Job-wide settings that belong to the deployment rather than to a pipeline file: set them in the Flink
 * configuration or with {@code -D} on {@code flink run}. The pipeline's own settings live in its
 * {@code bridge} section.
 */
public final class BridgeOptions {

    public static final ConfigOption<String> WORKER_JAR = ConfigOptions.key("flink-bridge.worker.jar")
            .stringType()
            .noDefaultValue()
            .withDescription("The worker jar a TaskManager spawns (one worker process per TaskManager, shared by "
                    + "its sessions) when the pipeline names no worker address. The --worker-jar flag, the "
                    + "flink-bridge.worker.jar system property and the FLINK_BRIDGE_WORKER_JAR variable "
                    + "also set it, in that order of precedence after this option.");

    public static final ConfigOption<Boolean> ALLOW_PLAINTEXT_REMOTE =
            ConfigOptions.key("flink-bridge.worker.allow-plaintext-remote")
            .booleanType()
            .defaultValue(false)
            .withDescription("Whether the pipeline's worker_address may name a worker on another host: one that is "
                    + "neither a Unix socket (unix:PATH) nor a loopback address (127.0.0.0/8, ::1, localhost, or a "
                    + "name that resolves only to loopback addresses). Without it such an address is refused before "
                    + "the job starts and when a session opens. Every gRPC channel to a worker is plaintext: with it, "
                    + "records and the control secret cross the network in clear.");

    public static final ConfigOption<String> WORKER_JVM_OPTIONS = ConfigOptions.key("flink-bridge.worker.jvm-options")
            .stringType()
            .defaultValue("-Xms16m -Xmx1g -XX:+UseSerialGC -XX:MaxHeapFreeRatio=50 -XX:-ShrinkHeapInSteps")
            .withDescription("JVM options of a spawned worker, separated by spaces. The default's heap starts small and"
                    + " shrinks back after a full collection, at once, to at most half free (the serial collector"
                    + " otherwise keeps its initial heap, a 64th of the machine's memory, and shrinks in steps over"
                    + " several collections): the worker collects in full when a barrier's evictions free an eighth"
                    + " of its heap, so that the memory the evicted keys took goes back to the system.");

    public static final ConfigOption<String> PYTHON_RUNTIME = ConfigOptions.key("flink-bridge.worker.python.runtime")
            .stringType()
            .noDefaultValue()
            .withDescription("The folder of the Python worker runtime (workers/python/ in the repository) a TaskManager "
                    + "spawns for pipelines with bridge.worker: python. The system property of the same name and "
                    + "the FLINK_BRIDGE_PYTHON_RUNTIME variable also set it, in that order after this option.");

    public static final ConfigOption<String> RUST_WORKER = ConfigOptions.key("flink-bridge.worker.rust.binary")
            .stringType()
            .noDefaultValue()
            .withDescription("The Rust worker binary (workers/rust/target/release/flink-bridge-worker in the "
                    + "repository) a TaskManager spawns for pipelines with bridge.worker: rust. The system property "
                    + "of the same name and the FLINK_BRIDGE_RUST_WORKER variable also set it, in that order after "
                    + "this option.");

    public static final ConfigOption<String> PYTHON_EXECUTABLE = ConfigOptions.key("flink-bridge.worker.python.executable")
            .stringType()
            .defaultValue("/usr/bin/python3")
            .withDescription("The Python interpreter of a spawned Python worker: one with the grpcio and protobuf "
                    + "packages (Debian's python3-grpcio and python3-protobuf). The launcher finds one and sets it.");

    public static final ConfigOption<String> PYTHON_PATH = ConfigOptions.key("flink-bridge.worker.python.path")
            .stringType()
            .defaultValue("")
            .withDescription("Directories, separated by ':', where a spawned Python worker finds the modules of "
                    + "the pipeline's segments, besides the pipeline file's own directory.");

    public static final ConfigOption<Boolean> REFUSE_PICKLED_STATE =
            ConfigOptions.key("flink-bridge.worker.python.refuse-pickled-state")
                    .booleanType()
                    .defaultValue(false)
                    .withDescription("Whether a spawned worker hosting Python segments keeps their state only through "
                            + "their own snapshot()/restore(bytes): a segment without them, or a checkpoint holding "
                            + "pickled state, is then refused. Restoring a pickled instance runs code chosen by "
                            + "whoever can write the checkpoint storage, so leave it off only where that storage is "
                            + "trusted like the code.");

    public static final ConfigOption<String> WORKER_SEGMENTS = ConfigOptions.key("flink-bridge.worker.segments")
            .stringType()
            .noDefaultValue()
            .withDescription("The spawned Python worker's own segments, which serve the steps a pipeline file gives"
                    + " no type (as sentry_streams writes them): module.NAME of a list whose entry N, or a dict whose"
                    + " key N, is the segment class serving segment N. Passed to the worker as --segments.");

    public static final ConfigOption<Integer> GRPC_BATCH_FRAMES = ConfigOptions.key("flink-bridge.grpc.batch-frames")
            .intType()
            .defaultValue(256)
            .withDescription("Frames per batch on the streamed gRPC data plane. A batch is also sent as soon as "
                    + "the bridge would otherwise wait, or when nothing else is in flight.");

    public static final ConfigOption<Duration> WATERMARK_INTERVAL = ConfigOptions.key("flink-bridge.watermark-interval")
            .durationType()
            .defaultValue(Duration.ofMillis(200))
            .withDescription("How often event-time watermarks, taken from the records' timestamps, advance while "
                    + "records flow. Each watermark also makes every bridge function emit the outputs it has.");

    public static final ConfigOption<Duration> PROCESSING_TIME_BUFFER_TIMEOUT =
            ConfigOptions.key("flink-bridge.processing-time.buffer-timeout")
            .durationType()
            .defaultValue(Duration.ofMillis(10))
            .withDescription("Flink's buffer timeout on the exchange into a keyed segment whose steps close by "
                    + "processing time (a batch's max_wait_ms counts from when its first record reaches the "
                    + "segment): on a quiet stream a record waits up to this long in a network buffer before the "
                    + "segment sees it, where Flink's own default (execution.buffer-timeout.interval) is 100 ms. "
                    + "Set on that exchange alone, and never above the job's own buffer timeout.");

    public static final ConfigOption<String> SHM_DIRECTORY = ConfigOptions.key("flink-bridge.shm.directory")
            .stringType()
            .defaultValue(RingFiles.defaultDirectory().toString())
            .withDescription("The private directory (created with mode 0700) where shm sessions' ring files live; "
                    + "it should be on a tmpfs shared with the worker. Files left by crashed processes are "
                    + "removed when a TaskManager first uses it.");

    public static final ConfigOption<MemorySize> SHM_RING_CAPACITY = ConfigOptions.key("flink-bridge.shm.ring-capacity")
            .memoryType()
            .defaultValue(MemorySize.parse("4mb"))
            .withDescription("The size of each of an shm session's two rings (to the worker and back): a power of "
                    + "two of at least 4 kb. A record or output may take at most half of it.");

    public static final ConfigOption<Duration> LIVENESS_TIMEOUT = ConfigOptions.key("flink-bridge.liveness-timeout")
            .durationType()
            .defaultValue(Duration.ofSeconds(5))
            .withDescription("How long the heartbeat a worker or bridge writes into an shm session's ring (every "
                    + "100 ms) may be silent before the other side ends the session as lost. A peer that closed "
                    + "the ring, or a spawned worker whose process has exited, is noticed sooner. Process ids are "
                    + "not used: the worker may live in another PID namespace (a sidecar container).");

    public static final ConfigOption<MemorySize> JOURNAL_SIZE = ConfigOptions.key("flink-bridge.worker.journal-size")
            .memoryType()
            .defaultValue(MemorySize.parse("32mb"))
            .withDescription("The bound of each session's journal (off-heap): the inputs sent to the worker since "
                    + "the last checkpoint barrier, which recovery in place (bridge.worker_recovery: in_place) "
                    + "replays to a new worker. Its memory is Flink managed memory: the segment's operator "
                    + "declares a use of it (OPERATOR, weighted by this size in MiB), and the journal reserves what "
                    + "it holds from its slot, so the operator's share of the slot bounds it too where smaller "
                    + "(taskmanager.memory.managed.size and .consumer-weights size that share). Past its bound, a "
                    + "worker lost before the next barrier fails the task, and the job restores from its "
                    + "checkpoint.");

    public static final ConfigOption<Boolean> WORKER_STANDBY = ConfigOptions.key("flink-bridge.worker.standby")
            .booleanType()
            .defaultValue(true)
            .withDescription("With recovery in place, whether a TaskManager keeps a standby process behind each worker"
                    + " it spawns (started 3 s after it), which takes over at once when the worker is lost instead"
                    + " of a new process being started then. Costs one idle worker process per TaskManager.");

    public static final ConfigOption<MemorySize> MAX_SNAPSHOT_SIZE =
            ConfigOptions.key("flink-bridge.worker.state.max-snapshot-size")
            .memoryType()
            .defaultValue(MemorySize.parse("1gb"))
            .withDescription("The most whole-instance state (steps with their own snapshot and restore, pickled Python "
                    + "segments) one session's worker may hand over at a checkpoint. The bridge holds it on its heap "
                    + "until the checkpoint is written (and, with recovery in place, until the next), so a larger "
                    + "snapshot fails the checkpoint, naming the session, its size and this option, instead of the "
                    + "TaskManager's heap.");

    public static final ConfigOption<MemorySize> CELLS_BUDGET =
            ConfigOptions.key("flink-bridge.worker.cells-budget")
            .memoryType()
            .defaultValue(MemorySize.parse("64mb"))
            .withDescription("How many bytes of cells (per-key state kept in Flink's keyed state) one session's worker "
                    + "holds, each key counting its cells, itself and 128 bytes for what holding it costs (also on the "
                    + "TaskManager's heap). Past it, each checkpoint's barrier evicts the least recently used keys that "
                    + "no record touched since the previous checkpoint, so the worker holds about this much plus the "
                    + "keys one checkpoint interval touches; an evicted key is loaded again with its next record.");

    private BridgeOptions() {}
}
