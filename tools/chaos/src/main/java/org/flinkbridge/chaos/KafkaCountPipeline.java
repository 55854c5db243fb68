package org.flinkbridge.chaos;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The job the chaos run and the sandbox load test drive: keyed JSON records from a Kafka topic through one step in
 * the worker (by default the per-key running count) into the exactly-once Kafka sink, at parallelism 2, keyed by
 * the records' {@code key} field.
 */
final class KafkaCountPipeline {

    static final String RUNNING_COUNT = "{step_name: count_per_key, type: running_count, config: {key_json_field: key}}";
    /** The same, sending a record without the key (one that is not JSON) to the dead letters. */
    static final String RUNNING_COUNT_OR_DEAD_LETTER = "{step_name: count_per_key, type: running_count, "
            + "config: {key_json_field: key}, on_error: dead_letter}";

    private KafkaCountPipeline() {}

    /**
     * Writes the pipeline file.
     *
     * @param step   the step, as a pipeline file's flow mapping
     * @param worker the bridge's line that names the worker: {@code worker: LANGUAGE} or {@code worker_address: ...}
     */
    static Path write(Path file, String name, String servers, String input, String output, String step,
                      String transport, long checkpointIntervalMillis, String recovery, String worker)
            throws IOException {
        return write(file, name, servers, input, output, step, transport, checkpointIntervalMillis, recovery, worker,
                null);
    }

    /** The same, with the records the step fails on sent to {@code deadLetters}, an exactly-once topic (or null). */
    static Path write(Path file, String name, String servers, String input, String output, String step,
                      String transport, long checkpointIntervalMillis, String recovery, String worker,
                      String deadLetters) throws IOException {
        String deadLetterSink = deadLetters == null ? "" : """
                dead_letters: {type: kafka, bootstrap_servers: "%s", topic: %s, delivery: exactly_once}
                """.formatted(servers, deadLetters);
        return Files.writeString(file, deadLetterSink + """
                name: %s
                sources:
                  input: {type: kafka, bootstrap_servers: "%s", topic: %s, group_id: %s, starting_offsets: earliest}
                steps:
                  - %s
                sinks:
                  output: {type: kafka, bootstrap_servers: "%s", topic: %s, delivery: exactly_once}
                bridge:
                  transport: %s
                  parallelism: 2
                  key: {json_field: key}
                  checkpoint_interval_ms: %d
                  worker_timeout_ms: 10000
                  %s
                  worker_recovery: %s
                """.formatted(name, servers, input, name, step, servers, output, transport, checkpointIntervalMillis,
                worker, recovery));
    }
}
