package org.flinkbridge.pipeline;

import java.io.Serializable;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;

/**
 * Where the stream at the end of a {@link Flow} goes: to sinks, to one branch per record, to every branch, or
 * on into one branch.
 */
public sealed interface FlowEnd extends Serializable {

    /** The branches this end feeds, each once, in the file's order. */
    List<String> targets();

    /** The stream ends in these sinks; each receives every record. */
    record Sinks(List<SinkSpec> sinks) implements FlowEnd {
        public Sinks {
            sinks = List.copyOf(sinks);
            if (sinks.isEmpty()) {
                throw new IllegalArgumentException("a stream that ends in sinks needs at least one sink");
            }
        }

        @Override
        public List<String> targets() {
            return List.of();
        }
    }

    /**
     * Each record goes to one branch, chosen by a header or a top-level JSON field: the branch its value names,
     * else the default branch (also for a record without the field or header).
     *
     * @param step          the route's step_name, which names its operators
     * @param branchByValue value → branch
     */
    record Route(String step, KeySpec by, Map<String, String> branchByValue, String defaultBranch) implements FlowEnd {
        public Route {
            Checks.nonBlank(step, "route step name");
            if (by == null) {
                throw new IllegalArgumentException("route " + step + " needs what to route by");
            }
            branchByValue = Collections.unmodifiableMap(new LinkedHashMap<>(branchByValue));
            Checks.nonBlank(defaultBranch, "route " + step + "'s default branch");
        }

        /** The branch of a record whose header or field has {@code value} (empty when it has none). */
        public String branchOf(String value) {
            return branchByValue.getOrDefault(value, defaultBranch);
        }

        @Override
        public List<String> targets() {
            LinkedHashSet<String> targets = new LinkedHashSet<>(branchByValue.values());
            targets.add(defaultBranch);
            return List.copyOf(targets);
        }
    }

    /** Every record goes to each of these branches. */
    record Broadcast(String step, List<String> branches) implements FlowEnd {
        public Broadcast {
            Checks.nonBlank(step, "broadcast step name");
            branches = List.copyOf(branches);
            if (branches.size() < 2 || new LinkedHashSet<>(branches).size() != branches.size()) {
                throw new IllegalArgumentException("broadcast " + step + " needs two or more distinct branches, not "
                        + branches);
            }
        }

        @Override
        public List<String> targets() {
            return branches;
        }
    }

    /** The stream goes on into a branch, which unions it with the branch's other inputs. */
    record Join(String branch) implements FlowEnd {
        public Join {
            Checks.nonBlank(branch, "the branch to go on into");
        }

        @Override
        public List<String> targets() {
            return List.of(branch);
        }
    }
}
