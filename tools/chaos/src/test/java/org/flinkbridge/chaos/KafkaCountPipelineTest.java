package org.flinkbridge.chaos;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

class KafkaCountPipelineTest {

    @Test
    @SuppressWarnings("unchecked")
    void theTimersRunHasAWindowThenABatchInOneSegment(@TempDir Path dir) throws Exception {
        Path file = KafkaCountPipeline.write(dir.resolve("chaos.yaml"), "chaos-shm", "127.0.0.1:9092", "in", "out",
                ChaosRun.WINDOW_THEN_BATCH, "shm", 1000, "in_place", "worker: java");
        Map<String, Object> pipeline = new Yaml().load(Files.readString(file));
        List<Map<String, Object>> steps = (List<Map<String, Object>>) pipeline.get("steps");
        assertEquals(List.of(
                Map.of("step_name", "per_second", "type", "window", "config",
                        Map.of("key_json_field", "key", "size_ms", 1000, "allowed_lateness_ms", 2000)),
                Map.of("step_name", "batched", "type", "batch", "config",
                        Map.of("max_count", 50, "max_wait_ms", 300))), steps);
        assertEquals(Map.of("json_field", "key"), ((Map<String, Object>) pipeline.get("bridge")).get("key"));
    }
}
