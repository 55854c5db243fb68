package org.flinkbridge.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.stream.IntStream;

/**
 * The rounds of a benchmark that compares variants side by side. Each round runs every variant once, the order
 * rotated by one place from round to round, so that over a multiple of the number of variants each one takes each
 * place equally often: in a JVM still warming, whichever runs later in a round tends to run faster. A variant's
 * figure is the median of its rounds, which one round slowed by other work on a shared machine does not move; a ratio
 * between two variants is the ratio of their medians, given beside each round's own ratio, whose range shows how
 * far a single round could be trusted.
 */
final class Rounds {

    private Rounds() {}

    /** The order of each of {@code rounds} rounds: the r-th (from 0) runs {@code variants} rotated left by r. */
    static List<List<String>> orders(List<String> variants, int rounds) {
        if (rounds < 1) {
            throw new IllegalArgumentException("the rounds must be at least 1, not " + rounds);
        }
        List<List<String>> orders = new ArrayList<>();
        for (int round = 0; round < rounds; round++) {
            List<String> order = new ArrayList<>(variants);
            Collections.rotate(order, -round);
            orders.add(List.copyOf(order));
        }
        return orders;
    }

    /** The middle value, or the mean of the two middle ones of an even number of values. */
    static double median(List<Double> values) {
        if (values.isEmpty()) {
            throw new IllegalArgumentException("no values, so no median");
        }
        List<Double> sorted = values.stream().sorted().toList();
        int middle = sorted.size() / 2;
        return sorted.size() % 2 == 1 ? sorted.get(middle) : (sorted.get(middle - 1) + sorted.get(middle)) / 2;
    }

    /** One variant's figures over a baseline's: round by round, and the ratio of their medians. */
    record Ratio(List<Double> byRound, double ofMedians) {
        double min() {
            return Collections.min(byRound);
        }

        double max() {
            return Collections.max(byRound);
        }
    }

    /** {@code variant}'s figures over {@code baseline}'s, each given round by round (the same rounds). */
    static Ratio ratio(List<Double> variant, List<Double> baseline) {
        if (variant.isEmpty() || variant.size() != baseline.size()) {
            throw new IllegalArgumentException("a ratio needs both sides from the same rounds, not " + variant.size()
                    + " rounds against " + baseline.size());
        }
        List<Double> byRound = IntStream.range(0, variant.size())
                .mapToObj(round -> variant.get(round) / baseline.get(round)).toList();
        return new Ratio(byRound, median(variant) / median(baseline));
    }
}
