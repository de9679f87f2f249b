package dev.sdrt.graphs.passes;

import java.util.ArrayList;
import java.util.List;

/** Union-find whose elements carry a parity (layout) relative to their root; element 0 is NCHW. */
final class ParityUnionFind {
    private final int[] parent;
    private final int[] parity;
    private final int[] rank;

    ParityUnionFind(int n) {
        parent = new int[n];
        parity = new int[n];
        rank = new int[n];
        for (int i = 0; i < n; i++) {
            parent[i] = i;
        }
    }

    int find(int x) {
        int root = x;
        while (parent[root] != root) {
            root = parent[root];
        }
        // compress, accumulating parities from the top down
        List<Integer> path = new ArrayList<>();
        for (int y = x; parent[y] != y; y = parent[y]) {
            path.add(y);
        }
        for (int i = path.size() - 1; i >= 0; i--) {
            int y = path.get(i);
            int p = parent[y];
            if (p != root) {
                parity[y] ^= parity[p];
            }
            parent[y] = root;
        }
        return root;
    }

    int parityToRoot(int x) {
        find(x);
        return parity[x];
    }

    boolean determined(int x) {
        return find(x) == find(0);
    }

    /** Layout relative to element 0 (NCHW). */
    int layout(int x) {
        return parityToRoot(x) ^ parityToRoot(0);
    }

    /** Whether a and b may hold layouts differing by {@code d}. */
    boolean consistent(int a, int b, int d) {
        return find(a) != find(b) || (parityToRoot(a) ^ parityToRoot(b)) == d;
    }

    void union(int a, int b, int d) {
        int ra = find(a);
        int rb = find(b);
        int pa = parity[a];
        int pb = parity[b];
        if (ra == rb) {
            return;
        }
        if (rank[ra] < rank[rb]) {
            int t = ra;
            ra = rb;
            rb = t;
            int tp = pa;
            pa = pb;
            pb = tp;
        }
        parent[rb] = ra;
        parity[rb] = pa ^ pb ^ d;
        if (rank[ra] == rank[rb]) {
            rank[ra]++;
        }
    }
}
