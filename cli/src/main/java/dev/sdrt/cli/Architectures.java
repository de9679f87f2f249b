package dev.sdrt.cli;

import dev.sdrt.exporter.Exporter;
import java.util.Iterator;

/** The built-in architectures, for the --arch help of the commands that take one. */
final class Architectures implements Iterable<String> {
    @Override
    public Iterator<String> iterator() {
        return Exporter.ARCHITECTURES.iterator();
    }
}
