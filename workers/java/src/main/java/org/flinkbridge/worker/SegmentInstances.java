package org.flinkbridge.worker;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.proto.control.StepSpec;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.steps.SegmentChain;
import org.flinkbridge.worker.steps.StepFactory;

import java.util.ArrayList;
import java.util.List;

/**
 * Builds the logic of one segment from its step descriptions: for the worker's sessions, and for anything
 * that runs the same steps in its own process (the benchmark's in-process baseline).
 */
public final class SegmentInstances {

    private static final ObjectMapper JSON = new ObjectMapper();

    private SegmentInstances() {}

    /** Creates and opens every step, closing the ones already opened if a later one fails. */
    public static Step create(List<StepSpec> steps, String sessionName, SessionClock clock) {
        List<Step> opened = new ArrayList<>(steps.size());
        try {
            for (StepSpec step : steps) {
                opened.add(createStep(step, sessionName, clock));
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

    /** Creates and opens one step as a session does: its config parsed from the description's JSON. */
    public static Step createStep(StepSpec step, String sessionName, SessionClock clock) {
        return StepFactory.create(step.getType(), context(step, sessionName, clock));
    }

    private static StepContext context(StepSpec step, String sessionName, SessionClock clock) {
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
        };
    }
}
