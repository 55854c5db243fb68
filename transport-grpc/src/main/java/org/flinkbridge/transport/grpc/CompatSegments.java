package org.flinkbridge.transport.grpc;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.flinkbridge.proto.control.StepSpec;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The steps of each segment id, for the prototype's unary service (grpc mode compat), which has no session to
 * carry them: a job hands them to a worker it spawns as {@code --compat-segments JSON}, in this form:
 * {@code {"0": [{"name": ..., "type": ..., "config_json": ...}], ...}} (docs/protocol.md).
 */
public final class CompatSegments {

    public static final String OPTION = "--compat-segments";
    private static final ObjectMapper JSON = new ObjectMapper();

    private CompatSegments() {}

    public static String toJson(Map<Integer, List<StepSpec>> segments) {
        Map<String, List<Map<String, String>>> described = new LinkedHashMap<>();
        segments.forEach((id, steps) -> described.put(Integer.toString(id), steps.stream()
                .map(step -> Map.of("name", step.getName(), "type", step.getType(), "config_json",
                        step.getConfigJson()))
                .toList()));
        try {
            return JSON.writeValueAsString(described);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write the segments as JSON", e);
        }
    }

    /** @throws IllegalArgumentException naming what is wrong with {@code json} */
    public static Map<Integer, List<StepSpec>> fromJson(String json) {
        String expected = OPTION + " is not a JSON object of segment ids to lists of steps with name, type and"
                + " config_json";
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            throw new IllegalArgumentException(expected + ": " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException(expected);
        }
        Map<Integer, List<StepSpec>> segments = new TreeMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> fields = root.fields(); fields.hasNext(); ) {
            Map.Entry<String, JsonNode> segment = fields.next();
            int id;
            try {
                id = Integer.parseInt(segment.getKey());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(expected + ": '" + segment.getKey() + "' is no segment id");
            }
            List<StepSpec> steps = new ArrayList<>();
            for (JsonNode step : segment.getValue()) {
                if (!step.path("name").isTextual() || !step.path("type").isTextual()) {
                    throw new IllegalArgumentException(expected + ": segment " + id + " has a step " + step);
                }
                steps.add(StepSpec.newBuilder().setName(step.get("name").asText()).setType(step.get("type").asText())
                        .setConfigJson(step.path("config_json").asText("")).build());
            }
            segments.put(id, steps);
        }
        return segments;
    }
}
