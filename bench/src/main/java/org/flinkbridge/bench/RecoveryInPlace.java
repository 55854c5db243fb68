package org.flinkbridge.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.records.BridgeRecord;

import java.io.IOException;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;

/**
 * What the state benchmark measured of recovery in place, once it killed the workers serving a run's job with
 * SIGKILL: the bridge's own measure per subtask ({@link RecoveryMetrics}: recoveries, the last one's time from the
 * loss noticed to the journal replayed and checked, the inputs replayed), and the time a user sees, from the kill
 * to the first answer to an input sent after it, to the last answer of the recovery phase, and to the completion of
 * the first checkpoint triggered after it. {@code outcome} is "ok", or why it was not measured or failed (then the
 * figures are empty or 0).
 */
record RecoveryInPlace(String outcome, List<Long> killedPids, Map<Integer, RecoveryMetrics.Subtask> subtasks,
                       long firstOutputMillis, long allOutputsMillis, long checkpointMillis) {

    static final String OK = "ok";
    private static final ObjectMapper JSON = new ObjectMapper();

    RecoveryInPlace {
        killedPids = List.copyOf(killedPids);
        subtasks = Collections.unmodifiableMap(new TreeMap<>(subtasks));
    }

    static RecoveryInPlace notMeasured(String why) {
        return new RecoveryInPlace(why, List.of(), Map.of(), 0, 0, 0);
    }

    boolean measured() {
        return outcome.equals(OK);
    }

    /**
     * The outcome of a kill: "ok" where every one of {@code subtasks} (the job's, each a session on the killed
     * workers) recovered in place exactly once and the answers were exactly once ({@code problem} null), else why not.
     */
    static String judge(List<Long> killedPids, Map<Integer, RecoveryMetrics.Subtask> subtasks, int expectedSubtasks,
                        String problem) {
        if (killedPids.isEmpty()) {
            return "failed: no worker process to kill";
        }
        if (problem != null) {
            return "failed: " + problem;
        }
        if (subtasks.size() != expectedSubtasks) {
            return "failed: " + subtasks.size() + " of " + expectedSubtasks + " subtasks report the bridge's recovery"
                    + " metrics";
        }
        String notOnce = subtasks.entrySet().stream().filter(subtask -> subtask.getValue().recoveries() != 1)
                .map(subtask -> "subtask " + subtask.getKey() + " recovered " + subtask.getValue().recoveries()
                        + " times")
                .collect(Collectors.joining(", "));
        return notOnce.isEmpty() ? OK : "failed: " + notOnce + ", not once";
    }

    /** The longest of the subtasks' last recoveries, by the bridge's measure. */
    long maxMillis() {
        return subtasks.values().stream().mapToLong(RecoveryMetrics.Subtask::lastRecoveryMillis).max().orElse(0);
    }

    /** The report's column: the most, each subtask's, and what a user sees; or why not measured. No '|' in it. */
    String summary() {
        if (!measured()) {
            return outcome.replace('|', '/');
        }
        String each = subtasks.entrySet().stream()
                .map(subtask -> String.format(Locale.ROOT, "%,d", subtask.getValue().lastRecoveryMillis()))
                .collect(Collectors.joining(", "));
        long replayed = subtasks.values().stream().mapToLong(RecoveryMetrics.Subtask::replayedInputs).sum();
        return String.format(Locale.ROOT, "**%,d** (subtasks %s; %,d inputs replayed); after the kill: first answer"
                        + " %,d, all %,d, next checkpoint %,d", maxMillis(), each, replayed, firstOutputMillis,
                allOutputsMillis, checkpointMillis);
    }

    /**
     * The key's count an answer carries: the 1 KiB steps' header {@value StateBlobStep#COUNT_HEADER}, or
     * running_count's {@code "count":N} in its JSON; -1 where it has none.
     */
    static long countOf(BridgeRecord record) {
        String header = record.headers == null ? null : record.headers.get(StateBlobStep.COUNT_HEADER);
        if (header != null) {
            return Long.parseLong(header);
        }
        try {
            JsonNode count = JSON.readTree(record.payload).get("count");
            return count != null && count.canConvertToLong() ? count.asLong() : -1;
        } catch (IOException notJson) {
            return -1;
        }
    }
}
