package org.flinkbridge.pipeline;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Whether a pipeline's flows form a graph the job can build: every branch named exists, none leads back to
 * itself, and every branch is reached from the main steps. The model refuses a fault with its message; the
 * parser reports it at the key in the file that it is about.
 */
final class GraphCheck {

    enum Kind { UNKNOWN_BRANCH, CYCLE, UNREACHED }

    /**
     * @param from   the flow whose end names {@code branch}; null for an unreached branch
     * @param branch the branch named (unknown, or closing a cycle), or the branch never reached
     */
    record Fault(Kind kind, Flow from, String branch, String message) {
    }

    private GraphCheck() {
    }

    static Optional<Fault> check(Flow main, Map<String, Flow> branches) {
        Set<String> reached = new HashSet<>();
        Optional<Fault> fault = visit(main, new LinkedHashSet<>(), reached, branches);
        if (fault.isPresent()) {
            return fault;
        }
        return branches.keySet().stream().filter(branch -> !reached.contains(branch)).findFirst()
                .map(branch -> new Fault(Kind.UNREACHED, null, branch, "branch " + branch + " is not reached: no"
                        + " route, broadcast or 'to' names it"));
    }

    private static Optional<Fault> visit(Flow flow, LinkedHashSet<String> path, Set<String> reached,
                                         Map<String, Flow> branches) {
        for (String target : flow.end().targets()) {
            if (!branches.containsKey(target)) {
                return Optional.of(new Fault(Kind.UNKNOWN_BRANCH, flow, target, flow.describe() + " sends records"
                        + " to branch " + target + ", which is not under branches"
                        + (branches.isEmpty() ? " (the file has none)" : " (" + String.join(", ", branches.keySet())
                        + ")")));
            }
            if (path.contains(target)) {
                List<String> cycle = new ArrayList<>(path);
                cycle = cycle.subList(cycle.indexOf(target), cycle.size());
                return Optional.of(new Fault(Kind.CYCLE, flow, target, "branches form a cycle: "
                        + String.join(" -> ", cycle) + " -> " + target));
            }
            if (reached.add(target)) {
                path.add(target);
                Optional<Fault> fault = visit(branches.get(target), path, reached, branches);
                path.remove(target);
                if (fault.isPresent()) {
                    return fault;
                }
            }
        }
        return Optional.empty();
    }
}
