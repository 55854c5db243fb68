package org.flinkbridge.protocol;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ErrorTextsTest {

    private static final Pattern CUT = Pattern.compile(
            "(?s)(.*) \\.\\.\\. \\[(\\d+) bytes cut; the whole text is in the worker's log] \\.\\.\\. (.*)");

    @Test
    void aTextThatFitsIsKeptAsItIs() {
        String text = "x".repeat(ErrorTexts.MAX_BYTES - 3) + "ü";
        assertEquals(ErrorTexts.MAX_BYTES + 3, ErrorTexts.encodedLength(text));
        assertSame(text, ErrorTexts.cut(text, ErrorTexts.MAX_BYTES + 3));
    }

    @Test
    void percentAndTildeAndEveryNonAsciiByteCountThree() {
        assertEquals(1 + 3 + 3 + 3 + 3 * 2 + 3 * 4, ErrorTexts.encodedLength("a%~\nü😀"));
    }

    @Test
    void aLongTextKeepsItsStartAndEndAndSaysHowMuchIsCut() {
        String text = "java.lang.IllegalStateException: start " + "ü€😀 x".repeat(20_000) + " the end";

        String cut = ErrorTexts.cut(text, ErrorTexts.MAX_BYTES);

        assertTrue(ErrorTexts.encodedLength(cut) <= ErrorTexts.MAX_BYTES, cut);
        assertTrue(ErrorTexts.encodedLength(cut) > ErrorTexts.MAX_BYTES - 12, "room left unused: " + cut);
        Matcher parts = CUT.matcher(cut);
        assertTrue(parts.matches(), cut);
        assertTrue(text.startsWith(parts.group(1)) && parts.group(1).startsWith("java.lang.IllegalStateException: "),
                parts.group(1));
        assertTrue(text.endsWith(parts.group(3)) && parts.group(3).endsWith(" the end"), parts.group(3));
        assertEquals(utf8Length(text), utf8Length(parts.group(1)) + Long.parseLong(parts.group(2))
                + utf8Length(parts.group(3)));
    }

    @Test
    void aCutFallsOnCharacterBoundariesWhateverTheLimit() {
        String text = "😀".repeat(3_000);
        for (int limit = 200; limit < 260; limit++) {
            String cut = ErrorTexts.cut(text, limit);
            Matcher parts = CUT.matcher(cut);
            assertTrue(parts.matches() && ErrorTexts.encodedLength(cut) <= limit, cut);
            assertTrue(parts.group(1).codePoints().allMatch(c -> c == 0x1F600)
                    && parts.group(3).codePoints().allMatch(c -> c == 0x1F600), cut);
        }
    }

    private static long utf8Length(String text) {
        return text.getBytes(StandardCharsets.UTF_8).length;
    }
}
