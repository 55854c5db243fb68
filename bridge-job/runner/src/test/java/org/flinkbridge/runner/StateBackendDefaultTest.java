package org.flinkbridge.runner;

import org.apache.flink.configuration.CheckpointingOptions;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.configuration.StateBackendOptions;
import org.apache.flink.datastream.api.ExecutionEnvironment;
import org.apache.flink.datastream.impl.ExecutionEnvironmentImpl;
import org.flinkbridge.job.JobArguments;
import org.flinkbridge.job.PipelineJob;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

/**
 * A pipeline's job runs on the embedded RocksDB backend with incremental checkpoints and bloom filters unless Flink's
 * own options name another backend, which then wins with Flink's incremental default, or set those options.
 */
class StateBackendDefaultTest {

    @Test
    void theJobDefaultsToRocksDbWithIncrementalCheckpoints(@TempDir Path dir) throws Exception {
        Configuration config = built(dir);

        assertEquals("rocksdb", config.get(StateBackendOptions.STATE_BACKEND));
        assertEquals(true, config.get(CheckpointingOptions.INCREMENTAL_CHECKPOINTS));
        assertEquals("true", config.toMap().get("state.backend.rocksdb.use-bloom-filter"));
    }

    @Test
    void flinksOwnRocksDbOptionsWin(@TempDir Path dir) throws Exception {
        Configuration config = built(dir, "-Dstate.backend.rocksdb.use-bloom-filter=false");

        assertEquals("rocksdb", config.get(StateBackendOptions.STATE_BACKEND));
        assertEquals("false", config.toMap().get("state.backend.rocksdb.use-bloom-filter"));
    }

    @Test
    void aBackendNamedWithFlinksOwnOptionWins(@TempDir Path dir) throws Exception {
        Configuration config = built(dir, "-Dstate.backend.type=hashmap");

        assertEquals("hashmap", config.get(StateBackendOptions.STATE_BACKEND));
        assertFalse(config.contains(CheckpointingOptions.INCREMENTAL_CHECKPOINTS));
    }

    private static Configuration built(Path dir, String... options) throws Exception {
        Path pipeline = TestPipelines.write(dir, "backend", """
                name: backend
                sources:
                  events: {type: generator, count: 10}
                steps:
                  - {step_name: add_processed, type: append_field}
                sinks:
                  files: {type: file, path: unused}
                bridge: {key: {json_field: key}, checkpoint_interval_ms: 1000}
                """);
        String[] args = new String[options.length + 1];
        args[0] = pipeline.toString();
        System.arraycopy(options, 0, args, 1, options.length);
        JobArguments arguments = JobArguments.parse(args, pipeline);
        ExecutionEnvironment env = ExecutionEnvironment.getInstance();
        PipelineJob.build(env, arguments.loadPipeline(), arguments);
        return ((ExecutionEnvironmentImpl) env).getConfiguration();
    }
}
