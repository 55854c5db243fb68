package org.flinkbridge.runner;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;

import java.nio.charset.StandardCharsets;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A user step that prints a line per record, naming the generated event's id, and passes the record on. */
public class PrintEachStep implements Step {

    private static final Pattern ID = Pattern.compile("\"id\":(\\d+)");

    @Override
    public void process(Record input, Emitter output) {
        Matcher id = ID.matcher(new String(input.payload(), StandardCharsets.UTF_8));
        System.out.println("printed record " + (id.find() ? id.group(1) : "without an id"));
        output.emit(input);
    }
}
