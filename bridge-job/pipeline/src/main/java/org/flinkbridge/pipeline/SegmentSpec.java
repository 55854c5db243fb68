package org.flinkbridge.pipeline;

import java.io.Serializable;
import java.util.List;

/**
 * Consecutive steps that run in one worker session.
 *
 * @param id  the segment's position in the pipeline, 0, 1, 2, ...; the worker addresses segments by it
 * @param key the segment's own key (the file's {@code segments} section): the job keys the stream by it before the
 *            segment, whose cells and state are then that key's; null when the segment names none
 */
public record SegmentSpec(int id, String name, List<StepSpec> steps, KeySpec key) implements Serializable {

    /** A segment with no key of its own. */
    public SegmentSpec(int id, String name, List<StepSpec> steps) {
        this(id, name, steps, null);
    }

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
