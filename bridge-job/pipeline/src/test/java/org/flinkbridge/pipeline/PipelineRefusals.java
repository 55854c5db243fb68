package org.flinkbridge.pipeline;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The parser's refusals of pipeline files, as the tests expect them. */
final class PipelineRefusals {

    private PipelineRefusals() {}

    /** Parses {@code file}, which must be refused with the message {@code "<file>: " + expectedAfterFileName}. */
    static PipelineException assertRefused(Path file, String expectedAfterFileName) {
        PipelineException refusal = assertThrows(PipelineException.class, () -> PipelineParser.parse(file));
        assertEquals(file + ": " + expectedAfterFileName, refusal.getMessage());
        return refusal;
    }
}
