package org.flinkbridge.bench;

import com.sun.management.GarbageCollectionNotificationInfo;

import javax.management.NotificationEmitter;
import javax.management.NotificationListener;
import javax.management.openmbean.CompositeData;
import java.io.IOException;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Garbage-collection pauses on the wall clock, of this JVM (where Flink runs) and of a worker from its GC
 * log, to tell how many of the records slower than the latency goal were in flight during or just after
 * one: the evidence behind the end-to-end latency figures.
 */
final class GcPauses {

    /** How long after a pause a record still counts as delayed by it: the backlog it left takes time to drain. */
    static final long AFTERMATH_MILLIS = 20;

    /**
     * The worker JVM option that writes the GC log {@link #fromLog} reads. No rotation: a new process of the same
     * command starts the file afresh, rather than leaving the last one's beside it under a numbered name.
     */
    static String workerLogOption(Path log) {
        return "-Xlog:gc:file=" + log + ":time:filecount=0";
    }

    record Pause(long startMillis, long endMillis) {
        long millis() {
            return endMillis - startMillis;
        }
    }

    private static final Pattern LOG_PAUSE = Pattern.compile("^\\[(\\S+)\\].* Pause .* ([0-9.]+)ms$");
    private static final DateTimeFormatter LOG_TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSZ");

    private GcPauses() {}

    /** The stop-the-world pauses in a log written with {@link #workerLogOption}; the time stamps their end. */
    static List<Pause> fromLog(Path log) throws IOException {
        List<Pause> pauses = new ArrayList<>();
        if (!Files.exists(log)) {
            return pauses;
        }
        for (String line : Files.readAllLines(log)) {
            Matcher pause = LOG_PAUSE.matcher(line);
            if (pause.matches()) {
                long end = OffsetDateTime.parse(pause.group(1), LOG_TIME).toInstant().toEpochMilli();
                pauses.add(new Pause(end - Math.round(Double.parseDouble(pause.group(2))), end));
            }
        }
        return pauses;
    }

    /** Collects this JVM's collector pauses (not concurrent cycles) while open. */
    static final class ThisJvm implements AutoCloseable {
        private final List<Pause> pauses = Collections.synchronizedList(new ArrayList<>());
        private final long jvmStartMillis = ManagementFactory.getRuntimeMXBean().getStartTime();
        private final NotificationListener listener = (notification, handback) -> {
            if (GarbageCollectionNotificationInfo.GARBAGE_COLLECTION_NOTIFICATION.equals(notification.getType())) {
                GarbageCollectionNotificationInfo info =
                        GarbageCollectionNotificationInfo.from((CompositeData) notification.getUserData());
                if (!info.getGcName().contains("Concurrent")) {
                    pauses.add(new Pause(jvmStartMillis + info.getGcInfo().getStartTime(),
                            jvmStartMillis + info.getGcInfo().getEndTime()));
                }
            }
        };

        ThisJvm() {
            for (GarbageCollectorMXBean collector : ManagementFactory.getGarbageCollectorMXBeans()) {
                ((NotificationEmitter) collector).addNotificationListener(listener, null, null);
            }
        }

        List<Pause> pauses() {
            synchronized (pauses) {
                return List.copyOf(pauses);
            }
        }

        @Override
        public void close() throws Exception {
            for (GarbageCollectorMXBean collector : ManagementFactory.getGarbageCollectorMXBeans()) {
                ((NotificationEmitter) collector).removeNotificationListener(listener);
            }
        }
    }

    /** The pauses that overlap the measured span of a run. */
    static List<Pause> within(List<Pause> pauses, Latencies.Run run) {
        return pauses.stream().filter(p -> p.endMillis() >= run.measuredFromMillis()
                && p.startMillis() <= run.measuredToMillis()).toList();
    }

    /** The share of the slow records that were in flight during a pause or within {@link #AFTERMATH_MILLIS} of its end. */
    static double slowShareNear(List<Latencies.Slow> slow, List<Pause> pauses) {
        if (slow.isEmpty()) {
            return 0;
        }
        long near = slow.stream().filter(record -> pauses.stream().anyMatch(pause ->
                record.sentMillis() <= pause.endMillis() + AFTERMATH_MILLIS
                        && record.arrivedMillis() >= pause.startMillis())).count();
        return (double) near / slow.size();
    }

    /** The share of the run's measured time that is a pause or within {@link #AFTERMATH_MILLIS} of one. */
    static double timeShareNear(List<Pause> pauses, Latencies.Run run) {
        long span = run.measuredToMillis() - run.measuredFromMillis();
        if (span <= 0) {
            return 0;
        }
        long covered = 0;
        long coveredTo = Long.MIN_VALUE;
        for (Pause pause : pauses.stream().sorted((a, b) -> Long.compare(a.startMillis(), b.startMillis())).toList()) {
            long from = Math.max(Math.max(pause.startMillis(), coveredTo), run.measuredFromMillis());
            long to = Math.min(pause.endMillis() + AFTERMATH_MILLIS, run.measuredToMillis());
            if (to > from) {
                covered += to - from;
                coveredTo = to;
            }
        }
        return (double) covered / span;
    }
}
