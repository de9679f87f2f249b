package dev.sdrt.graphs.passes;

import dev.sdrt.graphs.ir.Node;
import dev.sdrt.graphs.ir.Shape;
import dev.sdrt.graphs.ir.Value;
import java.util.List;

/** For channels-last: an op or op group that can compute in either layout, with the 4-D activations it reads and writes. */
final class LayoutUnit {
    final String kind;
    final Node node;
    final List<Value> acts;
    /** GroupNorm pattern only. */
    Node reshapeIn;
    Node reshapeOut;
    long groups;
    /** The GroupNorm input's NCHW shape, read before any producer changed layout. */
    Shape shape;
    boolean conflicting;

    LayoutUnit(String kind, Node node, List<Value> acts) {
        this.kind = kind;
        this.node = node;
        this.acts = acts;
    }
}
