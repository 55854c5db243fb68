package org.flinkbridge.worker.steps;

import org.flinkbridge.worker.sdk.Emitter;
import org.flinkbridge.worker.sdk.MapCell;
import org.flinkbridge.worker.sdk.Record;
import org.flinkbridge.worker.sdk.Step;
import org.flinkbridge.worker.sdk.StepContext;
import org.flinkbridge.worker.sdk.ValueCell;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A step with a value cell {@code total} and a map cell {@code seen}, run by text commands in the payload:
 * {@code add N ID} adds N to the total and puts ID into seen, {@code fill N SIZE} puts N entries of SIZE bytes into
 * seen, {@code clear} empties both; each answers with one output, {@code total=T seen=S} (S: the entries of seen).
 */
public final class CellsStep implements Step {

    private ValueCell total;
    private MapCell seen;

    @Override
    public void open(StepContext context) {
        total = context.valueCell("total");
        seen = context.mapCell("seen");
    }

    @Override
    public void process(Record input, Emitter output) {
        String[] command = new String(input.payload(), StandardCharsets.UTF_8).split(" ");
        switch (command[0]) {
            case "add" -> {
                byte[] now = total.get();
                long sum = (now == null ? 0 : Long.parseLong(new String(now, StandardCharsets.UTF_8)))
                        + Long.parseLong(command[1]);
                total.set(Long.toString(sum).getBytes(StandardCharsets.UTF_8));
                seen.put(command[2].getBytes(StandardCharsets.UTF_8), new byte[] {1});
            }
            case "fill" -> {
                for (int i = 0; i < Integer.parseInt(command[1]); i++) {
                    byte[] value = new byte[Integer.parseInt(command[2])];
                    Arrays.fill(value, (byte) 'x');
                    seen.put(("f" + i).getBytes(StandardCharsets.UTF_8), value);
                }
            }
            case "clear" -> {
                total.clear();
                seen.clear();
            }
            default -> throw new IllegalArgumentException("unknown command " + command[0]);
        }
        int[] entries = {0};
        seen.forEach((key, value) -> entries[0]++);
        byte[] now = total.get();
        output.emit(input.withPayload(("total=" + (now == null ? "none" : new String(now, StandardCharsets.UTF_8))
                + " seen=" + entries[0]).getBytes(StandardCharsets.UTF_8)));
    }
}
