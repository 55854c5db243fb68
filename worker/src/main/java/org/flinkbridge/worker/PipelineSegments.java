package org.flinkbridge.worker;

import org.flinkbridge.pipeline.Pipeline;
import org.flinkbridge.pipeline.PipelineParser;
import org.flinkbridge.pipeline.SegmentSpec;
import org.flinkbridge.proto.control.StepSpec;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The segments of a pipeline file by id, as the prototype's service addresses them: that service has no
 * session to carry the steps, so a worker serving it reads the same file as the job.
 */
final class PipelineSegments {

    private PipelineSegments() {}

    static Map<Integer, List<StepSpec>> read(Path file) {
        Pipeline pipeline = PipelineParser.parse(file);
        Map<Integer, List<StepSpec>> segments = new TreeMap<>();
        for (SegmentSpec segment : pipeline.segments()) {
            List<StepSpec> steps = new ArrayList<>();
            for (org.flinkbridge.pipeline.StepSpec step : segment.steps()) {
                steps.add(StepSpec.newBuilder()
                        .setName(step.name()).setType(step.type()).setConfigJson(step.configJson()).build());
            }
            segments.put(segment.id(), steps);
        }
        return segments;
    }
}
