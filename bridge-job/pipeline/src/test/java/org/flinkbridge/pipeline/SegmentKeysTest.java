package org.flinkbridge.pipeline;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.flinkbridge.pipeline.PipelineRefusals.assertRefused;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/** A key per segment: the file's {@code segments} section keys any segment, the bridge section the first. */
class SegmentKeysTest {

    private static final String TWO_STAGES = """
            sources: {events: {type: generator, count: 10}}
            steps:
              - {step_name: per_user, type: running_count, config: {key_json_field: user}}
              - {step_name: tag, type: append_field, segment: tags}
              - {step_name: per_project, type: running_count, segment: projects, config: {key_json_field: project}}
            sinks: {out: {type: print}}
            """;

    @TempDir
    Path dir;

    @Test
    void eachSegmentIsKeyedByItsOwnKeyAndTheFirstByTheBridgeSections() throws IOException {
        Pipeline pipeline = PipelineParser.parse(write(TWO_STAGES + """
                segments: {projects: {key: {header: project}}}
                bridge: {key: {json_field: user}}
                """));

        assertEquals(new KeySpec(KeyKind.JSON_FIELD, "user"), pipeline.keyOf(pipeline.segments().get(0)));
        assertNull(pipeline.keyOf(pipeline.segments().get(1)), "segment tags names no key");
        assertEquals(new KeySpec(KeyKind.HEADER, "project"), pipeline.keyOf(pipeline.segments().get(2)));
    }

    /** Each case: what follows the steps, then the message after "<file>: ". */
    private static Stream<Arguments> invalidSegments() {
        return Stream.of(
                Arguments.of("segments: {project: {key: {header: project}}}\n",
                        "segments.project (line 7, column 12): expected the name of a segment of the steps (main,"
                                + " projects, tags) but found the segment 'project', which no step belongs to"),
                Arguments.of("segments: {projects: {}}\n",
                        "segments.projects.key (line 7, column 22): expected the segment's key: a mapping with one"
                                + " of json_field, header but found no 'key' key"),
                Arguments.of("segments: {projects: {key: {json_field: p}, keys: 2}}\n",
                        "segments.projects.keys (line 7, column 45): expected one of the keys key but found the key"
                                + " 'keys'"),
                Arguments.of("""
                        segments: {main: {key: {json_field: user}}}
                        bridge: {key: {json_field: user}}
                        """,
                        "segment main is keyed twice, by bridge.key and by its own key under segments: give its key in"
                                + " one place"));
    }

    @ParameterizedTest
    @MethodSource("invalidSegments")
    void segmentKeyErrorsNameThePlace(String rest, String expectedAfterFileName) throws IOException {
        assertRefused(write(TWO_STAGES + rest), expectedAfterFileName);
    }

    private Path write(String yaml) throws IOException {
        return Files.writeString(dir.resolve("segments.yaml"), yaml);
    }
}
