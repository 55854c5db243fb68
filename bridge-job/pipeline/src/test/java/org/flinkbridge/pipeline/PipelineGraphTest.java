package org.flinkbridge.pipeline;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.flinkbridge.pipeline.PipelineRefusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Pipelines as graphs: routes, broadcasts, branches with their own steps and sinks, unions. */
class PipelineGraphTest {

    private static final String SOURCES = "sources: {events: {type: generator, count: 10}}\n";
    /** Main steps that broadcast to branches a and b. */
    private static final String FAN = SOURCES + """
            steps:
              - {step_name: fan, broadcast: [a, b]}
            """;

    /** A route to three branches, one of which broadcasts, two of which go on into a fourth. */
    private static final String GRAPH = SOURCES + """
            steps:
              - {step_name: parse, type: append_field, config: {field: p, value: 1}}
              - step_name: by_kind
                route:
                  by: {json_field: kind}
                  branches: {click: clicks, view: views, tap: clicks}
                  default: other
            branches:
              clicks:
                steps:
                  - {step_name: count_clicks, type: running_count}
                to: all
              views:
                steps:
                  - {step_name: fan, broadcast: [audit, all]}
              other:
                sinks: {rest: {type: print}}
              audit:
                sinks: {audit_out: {type: print}}
              all:
                steps:
                  - {step_name: tag, type: append_field, config: {field: t, value: 2}}
                sinks: {everything: {type: print}}
            """;

    @TempDir
    Path dir;

    @Test
    void aGraphIsReadIntoFlows() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write(GRAPH));

        FlowEnd.Route route = (FlowEnd.Route) pipeline.main().end();
        assertEquals(new KeySpec(KeyKind.JSON_FIELD, "kind"), route.by());
        assertEquals(List.of("clicks", "views", "other"), route.targets());
        assertEquals("clicks", route.branchOf("tap"));
        assertEquals("other", route.branchOf("scroll"));
        assertEquals("other", route.branchOf(""));
        assertEquals(List.of("clicks", "views", "other", "audit", "all"), List.copyOf(pipeline.branches().keySet()));
        assertEquals(new FlowEnd.Join("all"), pipeline.branches().get("clicks").end());
        assertEquals(new FlowEnd.Broadcast("fan", List.of("audit", "all")), pipeline.branches().get("views").end());
        assertTrue(pipeline.branches().get("views").segments().isEmpty());
        // Segment ids run over the whole file in its order; a branch's steps default to a segment of its name.
        assertEquals(List.of("0 main [parse]", "1 clicks [count_clicks]", "2 all [tag]"), pipeline.segments().stream()
                .map(s -> s.id() + " " + s.name() + " " + s.steps().stream().map(StepSpec::name).toList()).toList());
        assertEquals(List.of("rest", "audit_out", "everything"),
                pipeline.sinks().stream().map(SinkSpec::name).toList());
    }

    @Test
    void aLinearFileIsMainStepsEndingInItsSinks() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write(SOURCES + """
                steps: [{step_name: s, type: filter}]
                sinks: {a: {type: print}, b: {type: print}}
                """));

        assertEquals(Map.of(), pipeline.branches());
        assertEquals(List.of("a", "b"), ((FlowEnd.Sinks) pipeline.main().end()).sinks().stream()
                .map(SinkSpec::name).toList());
    }

    @Test
    void aGraphSurvivesJavaSerialisation() throws Exception {
        Pipeline pipeline = PipelineParser.parse(write(GRAPH));
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(pipeline);
        }
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes.toByteArray()))) {
            assertEquals(pipeline, in.readObject());
        }
    }

    @Test
    void theModelRefusesACycleBuiltInCode() {
        SegmentSpec segment = new SegmentSpec(0, "main", List.of(new StepSpec("s", "filter", Map.of())));
        Flow main = new Flow(null, List.of(segment), new FlowEnd.Broadcast("fan", List.of("a", "b")));
        Map<String, Flow> branches = Map.of(
                "a", new Flow("a", List.of(), new FlowEnd.Join("b")),
                "b", new Flow("b", List.of(), new FlowEnd.Join("a")));

        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Pipeline("p",
                Path.of("p.yaml"), List.of(new GeneratorSourceSpec("g", 1L, 0, 1, 0)), main, branches,
                BridgeSettings.defaults(), null));

        assertTrue(e.getMessage().startsWith("branches form a cycle: "), e.getMessage());
    }

    /** Each case: the file's text, then the message after "<file>: ". */
    private static Stream<Arguments> invalidGraphs() {
        return Stream.of(
                Arguments.of(SOURCES + """
                        steps:
                          - step_name: r
                            route: {by: {header: kind}, branches: {a: left}, default: rigth}
                        branches:
                          left: {sinks: {l: {type: print}}}
                          right: {sinks: {r: {type: print}}}
                        """,
                        "steps[0].route.default (line 4, column 63): expected one of the branches left, right but"
                                + " found the branch 'rigth'"),
                Arguments.of(FAN,
                        "steps[0].broadcast[0] (line 3, column 34): expected a branch under a top-level branches"
                                + " mapping (the file has none) but found the branch 'a'"),
                Arguments.of(FAN + """
                        branches:
                          a: {to: b}
                          b: {to: c}
                          c: {to: a}
                        """,
                        "branches.c.to (line 7, column 11): expected a branch that does not lead back here but"
                                + " found 'a', and branches form a cycle: a -> b -> c -> a"),
                Arguments.of(FAN + """
                        branches:
                          a: {sinks: {x: {type: print}}}
                          b: {sinks: {y: {type: print}}}
                          lost: {sinks: {z: {type: print}}}
                        """,
                        "branches.lost (line 7, column 3): expected a branch that a route, broadcast or to names but"
                                + " found branch 'lost', which nothing sends records to"),
                Arguments.of(FAN + """
                        branches:
                          a: {sinks: {x: {type: print}}}
                          b:
                            steps: [{step_name: s, type: filter}]
                        """,
                        "branches.b (line 7, column 5): expected one of sinks, to (a branch to go on into), or a"
                                + " route or broadcast as its last step but found a branch with none: its records"
                                + " would go nowhere"),
                Arguments.of(FAN + """
                        branches:
                          a: {sinks: {x: {type: print}}, to: b}
                          b: {sinks: {y: {type: print}}}
                        """,
                        "branches.a.to (line 5, column 38): expected one of sinks, to (a branch to go on into), or"
                                + " a route or broadcast as its last step but found more than one: sinks and to"),
                Arguments.of(FAN + """
                          - {step_name: s, type: filter}
                        branches:
                          a: {sinks: {x: {type: print}}}
                          b: {sinks: {y: {type: print}}}
                        """,
                        "steps[1] (line 4, column 5): expected no step after broadcast fan, which ends its list of"
                                + " steps (its branches go on) but found another step"),
                Arguments.of(FAN + """
                        sinks: {out: {type: print}}
                        branches:
                          a: {sinks: {x: {type: print}}}
                          b: {sinks: {y: {type: print}}}
                        """,
                        "sinks (line 4, column 8): expected no sinks here, where the main steps end in broadcast"
                                + " fan, which sends every record to its branches: give each branch its sinks but"
                                + " found sinks"),
                Arguments.of(SOURCES + """
                        steps:
                          - {step_name: fan, broadcast: [a]}
                        """,
                        "steps[0].broadcast (line 3, column 33): expected a list of two or more branch names but"
                                + " found a list"),
                Arguments.of(SOURCES + """
                        steps:
                          - {step_name: fan, broadcast: [a, a]}
                        """,
                        "steps[0].broadcast[1] (line 3, column 37): expected a branch not listed before but found"
                                + " 'a' again"),
                Arguments.of(SOURCES + """
                        steps:
                          - {step_name: r, route: {by: {json_field: k}, branches: {x: a}}}
                        """,
                        "steps[0].route.default (line 3, column 27): expected the branch of the records whose value"
                                + " names no branch (and of those without the json_field) but found no 'default'"
                                + " key"),
                Arguments.of(SOURCES + """
                        steps:
                          - {step_name: r, type: filter, route: {by: {header: k}, branches: {x: a}, default: a}}
                        """,
                        "steps[0].type (line 3, column 20): expected one of the keys step_name, route but found the"
                                + " key 'type'"),
                Arguments.of(FAN + """
                        branches:
                          a: {sinks: {out: {type: print}}}
                          b: {sinks: {out: {type: print}}}
                        """,
                        "branches.b.sinks.out (line 6, column 15): expected a sink name unique in the pipeline but"
                                + " found 'out', which branches.a.sinks.out already uses"),
                Arguments.of(FAN + """
                        branches:
                          a:
                            steps: [{step_name: fan, type: filter}]
                            sinks: {x: {type: print}}
                          b: {sinks: {y: {type: print}}}
                        """,
                        "branches.a.steps[0].step_name (line 6, column 25): expected a unique step name but found"
                                + " 'fan', which steps[0] already uses"),
                Arguments.of(FAN + """
                        branches:
                          a: {steps: [{step_name: s, type: filter}], sinks: {x: {type: print}}}
                          b: {sinks: {y: {type: print}}}
                        bridge: {key: {json_field: key}}
                        """,
                        "bridge.key partitions the first segment of the main steps, but the main steps have none"
                                + " (they start with broadcast)"));
    }

    @ParameterizedTest
    @MethodSource("invalidGraphs")
    void graphErrorsNameThePlace(String yaml, String expectedAfterFileName) throws IOException {
        assertRefused(write(yaml), expectedAfterFileName);
    }

    private Path write(String yaml) throws IOException {
        return Files.writeString(dir.resolve("graph.yaml"), yaml);
    }
}
