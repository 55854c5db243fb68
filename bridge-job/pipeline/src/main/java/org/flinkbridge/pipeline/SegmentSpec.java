package org.flinkbridge.pipeline;

import java.io.Serializable;
import java.util.List;

/**
 * Consecutive steps that run in one worker session.
 *
 * @param id the segment's position in the pipeline, 0, 1, 2, ...; the worker addresses segments by it
 */
public record SegmentSpec(int id, String name, List<StepSpec> steps) implements Serializable {

    /** The segment of steps that name none. */
    public static final String DEFAULT_NAME = "main";

    public SegmentSpec {
        Checks.atLeast(id, 0, "segment id");
        Checks.nonBlank(name, "segment name");
        steps = List.copyOf(steps);
        if (steps.isEmpty()) {
            throw new IllegalArgumentException("segment " + name + " must have at least one step");
        }
    }
}
