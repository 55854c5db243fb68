package org.flinkbridge.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.worker.cells.SessionCells;
import org.flinkbridge.worker.cells.StepCells;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;
import org.flinkbridge.worker.steps.SegmentChain;
import org.flinkbridge.worker.steps.StepFactory;

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

    /** Creates and opens every step, as {@link #create(List, String, SessionClock, SessionCells)}, with no key. */
    public static Step create(List<StepSpec> steps, String sessionName, SessionClock clock) {
        return create(steps, sessionName, clock, new SessionCells(clock));
    }

    /**
     * Creates and opens every step, closing the ones already opened if a later one fails; the cells they declare
     * are {@code cells}'.
     */
    public static Step create(List<StepSpec> steps, String sessionName, SessionClock clock, SessionCells cells) {
        List<Step> opened = new ArrayList<>(steps.size());
        try {
            for (int i = 0; i < steps.size(); i++) {
                opened.add(createStep(steps.get(i), sessionName, clock, new StepCells(cells, i,
                        steps.get(i).getName())));
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
     * declared into {@code cells} while it opens, a built-in step built for a keyed session where {@code cells}'
     * session is one.
     */
    public static Step createStep(StepSpec step, String sessionName, SessionClock clock, StepCells cells) {
        Step created = StepFactory.create(step.getType(), context(step, sessionName, clock, cells), cells.keyed());
        cells.opened();
        return created;
    }

    private static StepContext context(StepSpec step, String sessionName, SessionClock clock, StepCells cells) {
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
        };
    }
}
