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
        return Files.writeString(file, """
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
