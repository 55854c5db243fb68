package org.flinkbridge.chaos;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Which of a job's failures begin a failover of their own. A killed TaskManager shows up several times in Flink's
 * exception history: first as whatever noticed its loss (a downstream task's closed connection, the resource
 * manager's heartbeat), then as restart attempts that cannot deploy while it is away (no slot to be had, or the dead
 * TaskManager, still registered, unreachable for the deployment). Only the first failure naming a TaskManager
 * begins a failover; the others repeat or retry it.
 */
final class Failovers {

    /** A TaskManager's resource id as Flink prints it: {@code 127.0.0.1:37099-3fe647}. */
    private static final Pattern TASK_MANAGER_ID = Pattern.compile("\\d{1,3}(?:\\.\\d{1,3}){3}:\\d+-[0-9a-f]{6}\\b");

    private Failovers() {}

    /** The failures (as the exception history lists them, newest first) that repeat or retry an earlier failover. */
    static Set<Cluster.Failure> retries(List<Cluster.Failure> newestFirst) {
        Set<String> lostTaskManagers = new HashSet<>();
        Set<Cluster.Failure> retries = new HashSet<>();
        for (Cluster.Failure failure : newestFirst.reversed()) {
            Set<String> named = new HashSet<>();
            Matcher id = TASK_MANAGER_ID.matcher(failure.message());
            while (id.find()) {
                named.add(id.group());
            }
            if (cannotDeploy(failure) || named.stream().anyMatch(lostTaskManagers::contains)) {
                retries.add(failure);
            }
            lostTaskManagers.addAll(named);
        }
        return retries;
    }

    private static boolean cannotDeploy(Cluster.Failure failure) {
        return failure.message().contains("NoResourceAvailableException")
                || failure.message().contains("TaskExecutorGateway.submitTask") && failure.message().contains("unreachable");
    }
}
