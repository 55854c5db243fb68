package org.flinkbridge.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.cells.StepCells;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.Timers;
import org.flinkbridge.worker.sdk.ValueCell;
import org.flinkbridge.worker.steps.SegmentChain;
import org.flinkbridge.worker.steps.StepFactory;
import org.flinkbridge.worker.timers.SessionTimers;
import org.flinkbridge.worker.timers.StepTimers;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * Builds the logic of one segment from its step descriptions: for the worker's sessions, and for anything
 * that runs the same steps in its own process (the benchmark's in-process baseline).
 */
public final class SegmentInstances {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SegmentInstances() {}

    /**
     * Creates and opens every step, as {@link #create(List, String, SessionClock, SessionCells, SessionTimers)}, with
     * no key.
     */
    public static SegmentChain create(List<StepSpec> steps, String sessionName, SessionClock clock) {
        return create(steps, sessionName, clock, new SessionCells(clock), new SessionTimers(clock));
    }

    /**
     * Creates and opens every step, closing the ones already opened if a later one fails; the cells they declare
     * are {@code cells}', their timers {@code timers}'.
     */
    public static SegmentChain create(List<StepSpec> steps, String sessionName, SessionClock clock,
                                      SessionCells cells, SessionTimers timers) {
        List<Step> opened = new ArrayList<>(steps.size());
        try {
            for (int i = 0; i < steps.size(); i++) {
                String name = steps.get(i).getName();
                opened.add(createStep(steps.get(i), sessionName, clock, new StepCells(cells, i, name),
                        new StepTimers(timers, i, name)));
            }
            return new SegmentChain(opened);
        } catch (RuntimeException e) {
            for (Step segment : opened) {
                try {
                    segment.close();
                } catch (Exception closeFailure) {
                    e.addSuppressed(closeFailure);
                }
            }
            throw e;
        }
    }

    /**
     * Creates and opens one step as a session does: its config parsed from the description's JSON, its cells
     * declared into {@code cells} and its timers into {@code timers} while it opens, a built-in step built for a
     * keyed session where {@code cells}' session is one.
     */
    public static Step createStep(StepSpec step, String sessionName, SessionClock clock, StepCells cells,
                                  StepTimers timers) {
        Step created = StepFactory.create(step.getType(), context(step, sessionName, clock, cells, timers),
                cells.keyed());
        cells.opened();
        timers.opened();
        return created;
    }

    private static StepContext context(StepSpec step, String sessionName, SessionClock clock, StepCells cells,
                                       StepTimers timers) {
        JsonNode config;
        try {
            config = step.getConfigJson().isEmpty()
                    ? JSON.createObjectNode()
                    : JSON.readTree(step.getConfigJson());
        } catch (Exception e) {
            throw new IllegalArgumentException(
                    "step '" + step.getName() + "': config is not valid JSON: " + e.getMessage(), e);
        }
        return new StepContext() {
            @Override
            public String stepName() {
                return step.getName();
            }

            @Override
            public JsonNode config() {
                return config;
            }

            @Override
            public String sessionName() {
                return sessionName;
            }

            @Override
            public long currentTimeMillis() {
                return clock.millis();
            }

            @Override
            public ValueCell valueCell(String name) {
                return cells.valueCell(name, null);
            }

            @Override
            public ValueCell valueCell(String name, Duration ttl) {
                return cells.valueCell(name, java.util.Objects.requireNonNull(ttl, "ttl"));
            }

            @Override
            public MapCell mapCell(String name) {
                return cells.mapCell(name, null);
            }

            @Override
            public MapCell mapCell(String name, Duration ttl) {
                return cells.mapCell(name, java.util.Objects.requireNonNull(ttl, "ttl"));
            }

            @Override
            public Timers timers() {
                return timers.declare();
            }
        };
    }
}
