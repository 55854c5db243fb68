package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.TimeDomain;
import org.flinkbridge.worker.sdk.Timers;
import org.flinkbridge.worker.sdk.ValueCell;

import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * A step that sets timers, run by commands in the payload separated by commas: {@code event T} and {@code proc T} set
 * an event-time or processing-time timer at T, {@code -event T} and {@code -proc T} delete one, {@code note X} puts X
 * in its value cell {@code note}, {@code fail} throws; each record answers {@code ok}. A firing emits
 * {@code fired DOMAIN T note=X watermark=W}; with the note {@code again} it sets an event-time timer 10 later, with
 * {@code boom} it throws. Config {@code {"cells": false}}: no cell (and no note).
 */
public final class TimerStep implements Step {

    private Timers timers;
    private ValueCell note;

    @Override
    public void open(StepContext context) {
        if (context.config().path("cells").asBoolean(true)) {
            note = context.valueCell("note");
        }
        timers = context.timers();
    }

    @Override
    public void process(Record input, Emitter output) {
        // Lower case: a step before it may have upper-cased the commands.
        String commands = new String(input.payload(), StandardCharsets.UTF_8).toLowerCase(java.util.Locale.ROOT);
        for (String command : commands.split(",")) {
            if (command.isEmpty()) {
                continue;
            }
            String[] parts = command.split(" ");
            switch (parts[0]) {
                case "event" -> timers.setEventTime(Long.parseLong(parts[1]));
                case "proc" -> timers.setProcessingTime(Long.parseLong(parts[1]));
                case "-event" -> timers.deleteEventTime(Long.parseLong(parts[1]));
                case "-proc" -> timers.deleteProcessingTime(Long.parseLong(parts[1]));
                case "note" -> note.set(parts[1].getBytes(StandardCharsets.UTF_8));
                case "fail" -> throw new IllegalStateException("failed as asked");
                default -> throw new IllegalArgumentException("unknown command " + parts[0]);
            }
        }
        output.emit(input.withPayload("ok".getBytes(StandardCharsets.UTF_8)));
    }

    @Override
    public void onTimer(long timestamp, TimeDomain domain, Emitter output) {
        String noted = note == null || note.get() == null ? "none" : new String(note.get(), StandardCharsets.UTF_8);
        if (noted.equals("boom")) {
            throw new IllegalStateException("boom at " + timestamp);
        }
        if (noted.equals("again")) {
            timers.setEventTime(timestamp + 10);
        }
        output.emit(new Record(("fired " + domain + " " + timestamp + " note=" + noted + " watermark="
                + timers.currentWatermark()).getBytes(StandardCharsets.UTF_8), Map.of(), timestamp));
    }
}
