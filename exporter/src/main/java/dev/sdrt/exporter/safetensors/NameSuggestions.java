package dev.sdrt.exporter.safetensors;

import static dev.sdrt.exporter.json.JsonInput.abbreviate;

import dev.sdrt.exporter.json.JsonInput;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;

/** Picks the names closest to a misspelled one, for "no such tensor" messages. */
final class NameSuggestions {
    /**
     * Names are compared by their first this many characters: real tensor names are far shorter, and a
     * corrupt header's megabyte-long name must not cost a megabyte-squared edit distance.
     */
    private static final int COMPARED_CHARACTERS = 256;

    private NameSuggestions() {
    }

    /** Up to {@code limit} of {@code names}, nearest to {@code wanted} by edit distance first. */
    static List<String> closest(Collection<String> names, String wanted, int limit) {
        record Scored(String name, int distance) {
        }
        return names.stream()
                .map(name -> new Scored(name, editDistance(prefix(name), prefix(wanted))))
                .sorted(Comparator.comparingInt(Scored::distance).thenComparing(Scored::name))
                .limit(limit)
                .map(Scored::name)
                .toList();
    }

    /** "no tensor 'x' among 305; closest: 'a', 'b'", with {@code kind} in place of "tensor". */
    static String describeMissing(String kind, Collection<String> names, String wanted) {
        List<String> closest = closest(names, wanted, 5).stream().map(JsonInput::abbreviate).toList();
        if (closest.isEmpty()) {
            return "no " + kind + " '" + abbreviate(wanted) + "' (there are none)";
        }
        return "no " + kind + " '" + abbreviate(wanted) + "' among " + names.size() + "; closest: '"
                + String.join("', '", closest) + "'";
    }

    private static String prefix(String name) {
        return name.length() <= COMPARED_CHARACTERS ? name : name.substring(0, COMPARED_CHARACTERS);
    }

    /** Levenshtein distance with two rolling rows. */
    private static int editDistance(String a, String b) {
        int[] previous = new int[b.length() + 1];
        int[] current = new int[b.length() + 1];
        for (int j = 0; j <= b.length(); j++) {
            previous[j] = j;
        }
        for (int i = 1; i <= a.length(); i++) {
            current[0] = i;
            for (int j = 1; j <= b.length(); j++) {
                int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
                current[j] = Math.min(substitution, Math.min(previous[j], current[j - 1]) + 1);
            }
            int[] swap = previous;
            previous = current;
            current = swap;
        }
        return previous[b.length()];
    }
}
