package org.flinkbridge.pipeline;

import java.io.Serializable;
import java.util.List;

/**
 * A stretch of the pipeline's graph: the records of its input (the sources for the main steps; for a branch,
 * the union of what routes, broadcasts and joins send it) run through its segments in order, then go where
 * its end says.
 *
 * @param branch   the branch's name; null for the main steps
 * @param segments in order; may be empty (a branch that only writes to sinks, or a route straight after the
 *                 sources)
 */
public record Flow(String branch, List<SegmentSpec> segments, FlowEnd end) implements Serializable {

    public Flow {
        if (branch != null) {
            Checks.nonBlank(branch, "branch name");
        }
        segments = List.copyOf(segments);
        if (end == null) {
            throw new IllegalArgumentException(describe(branch) + " must end somewhere: sinks, a route, a broadcast"
                    + " or a branch to go on into");
        }
    }

    /** The main steps ending in {@code sinks}: the whole of a linear pipeline. */
    public static Flow linear(List<SegmentSpec> segments, List<SinkSpec> sinks) {
        return new Flow(null, segments, new FlowEnd.Sinks(sinks));
    }

    public boolean isMain() {
        return branch == null;
    }

    /** "the main steps" or "branch clicks", for messages. */
    public String describe() {
        return describe(branch);
    }

    private static String describe(String branch) {
        return branch == null ? "the main steps" : "branch " + branch;
    }
}
