package org.flinkbridge.bench;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class RoundsTest {

    private static final List<String> VARIANTS = List.of("shm", "dead-letter-shm", "dead-letter-1pct-shm");

    @Test
    void eachRoundRunsTheVariantsRotatedByOneMorePlace() {
        assertEquals(List.of(
                List.of("shm", "dead-letter-shm", "dead-letter-1pct-shm"),
                List.of("dead-letter-shm", "dead-letter-1pct-shm", "shm"),
                List.of("dead-letter-1pct-shm", "shm", "dead-letter-shm"),
                List.of("shm", "dead-letter-shm", "dead-letter-1pct-shm")), Rounds.orders(VARIANTS, 4));
    }

    @Test
    void overAMultipleOfTheVariantsEachTakesEachPlaceEquallyOften() {
        List<List<String>> orders = Rounds.orders(VARIANTS, 6);
        for (String variant : VARIANTS) {
            for (int place = 0; place < VARIANTS.size(); place++) {
                int atPlace = place;
                assertEquals(2, orders.stream().filter(order -> order.get(atPlace).equals(variant)).count(),
                        variant + " at place " + (place + 1));
            }
        }
    }

    @Test
    void oneRoundIsTheVariantsInTheirOrder() {
        assertEquals(List.of(VARIANTS), Rounds.orders(VARIANTS, 1));
    }

    @Test
    void noRoundsIsRefused() {
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> Rounds.orders(VARIANTS, 0));
        assertTrue(refused.getMessage().contains("at least 1"), refused.getMessage());
    }

    @Test
    void theMedianIsTheMiddleValueWhateverTheOrder() {
        assertEquals(5.0, Rounds.median(List.of(9.0, 1.0, 5.0)));
        assertEquals(7.0, Rounds.median(List.of(7.0)));
    }

    @Test
    void theMedianOfAnEvenCountIsTheMeanOfTheMiddleTwo() {
        assertEquals(4.5, Rounds.median(List.of(8.0, 1.0, 4.0, 5.0, 100.0, 2.0)));
    }

    @Test
    void noValuesHaveNoMedian() {
        assertThrows(IllegalArgumentException.class, () -> Rounds.median(List.of()));
    }

    @Test
    void aRatioIsGivenRoundByRoundAndAsTheRatioOfTheMedians() {
        // One slow round of the variant (a burst of other work) moves its own round's ratio, not the medians'.
        Rounds.Ratio ratio = Rounds.ratio(List.of(100.0, 90.0, 40.0, 110.0), List.of(100.0, 100.0, 100.0, 100.0));
        assertEquals(List.of(1.0, 0.9, 0.4, 1.1), ratio.byRound());
        assertEquals(0.95, ratio.ofMedians(), 1e-12);
        assertEquals(0.4, ratio.min());
        assertEquals(1.1, ratio.max());
    }

    @Test
    void theRatioOfTheMediansIsNotTheMedianOfTheRatios() {
        Rounds.Ratio ratio = Rounds.ratio(List.of(90.0, 100.0, 120.0), List.of(100.0, 80.0, 200.0));
        // Rounds' ratios 0.9, 1.25, 0.6 (median 0.9); medians 100 over 100.
        assertEquals(1.0, ratio.ofMedians(), 1e-12);
    }

    @Test
    void aRatioNeedsBothSidesFromTheSameRounds() {
        IllegalArgumentException refused = assertThrows(IllegalArgumentException.class,
                () -> Rounds.ratio(List.of(1.0, 2.0), List.of(1.0)));
        assertTrue(refused.getMessage().contains("2 rounds against 1"), refused.getMessage());
    }
}
