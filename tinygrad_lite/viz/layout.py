"""Draw a ``viz.Graph`` without Graphviz: a layered (Sugiyama-style) layout drawn with matplotlib.

The three classic steps, kept simple:

1. Layers. A node's layer is one more than the deepest of its inputs, so every edge points
   down (the nodes come in a topological order, inputs first, so one pass is enough).
2. Order within each layer. Start in the topological order, then sweep down and up a few times
   placing each node at the mean position (barycentre) of its neighbours in the layer above
   (or below): connected nodes line up and edges cross less.
3. Coordinates. Nodes of a layer sit side by side, each as wide as its text; layers are
   stacked top to bottom, each as tall as its tallest node.

Edges are straight arrows (Graphviz would route them around nodes; an edge that skips layers
bows a little), each module is a light frame around its nodes (the layout does not keep modules
apart, so frames may overlap), and the op tooltips are only in Graphviz's SVG. Coordinates are
inches of the figure, so the text size is the same whatever the size of the graph.
"""

from __future__ import annotations

CHAR_WIDTH = 0.062   # inches per character at FONT_SIZE (a generous estimate)
LINE_HEIGHT = 0.14   # inches per text line at FONT_SIZE
FONT_SIZE = 7
H_GAP, V_GAP, MARGIN = 0.25, 0.35, 0.3
SWEEPS = 4
MAX_PIXELS = 30000   # matplotlib refuses images past 2**16 pixels a side; stay well below


def _layers(graph) -> dict:
    """node id -> layer number: one below the deepest input; a node without inputs (a
    parameter, a constant) sits just above its first consumer rather than at the top."""
    inputs = {n.id: [] for n in graph.nodes}
    outputs = {n.id: [] for n in graph.nodes}
    for a, b in graph.edges:
        inputs[b].append(a)
        outputs[a].append(b)
    layer = {}
    for n in graph.nodes:  # topological order: every input already has its layer
        layer[n.id] = 1 + max((layer[a] for a in inputs[n.id]), default=-1)
    for n in graph.nodes:
        if not inputs[n.id] and outputs[n.id]:
            layer[n.id] = min(layer[b] for b in outputs[n.id]) - 1
    return layer


def _order_layers(graph, layer: dict) -> list:
    """Nodes of each layer, ordered by barycentre sweeps: a list of lists of node ids."""
    rows = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in graph.nodes:
        rows[layer[n.id]].append(n.id)
    above = {n.id: [] for n in graph.nodes}
    below = {n.id: [] for n in graph.nodes}
    for a, b in graph.edges:
        above[b].append(a)
        below[a].append(b)

    def reorder(row, neighbours, position):
        def barycentre(k_and_id):
            k, node_id = k_and_id
            linked = [position[m] for m in neighbours[node_id] if m in position]
            return (sum(linked) / len(linked), k) if linked else (k, k)  # unlinked: stay put
        return [node_id for _, node_id in sorted(enumerate(row), key=barycentre)]

    for _ in range(SWEEPS):
        for i in range(1, len(rows)):  # down: follow the layer above
            position = {m: k for k, m in enumerate(rows[i - 1])}
            rows[i] = reorder(rows[i], above, position)
        for i in range(len(rows) - 2, -1, -1):  # up: follow the layer below
            position = {m: k for k, m in enumerate(rows[i + 1])}
            rows[i] = reorder(rows[i], below, position)
    return rows


def _box_size(label: str) -> tuple:
    lines = label.split("\n")
    return (max(len(line) for line in lines) * CHAR_WIDTH + 0.2,
            len(lines) * LINE_HEIGHT + 0.12)


def layout(graph) -> tuple:
    """Positions: ({node id: (x, y, width, height)}, figure width, figure height), in inches,
    y growing upwards (the first layer at the top)."""
    sizes = {n.id: _box_size(n.label) for n in graph.nodes}
    rows = _order_layers(graph, _layers(graph))
    row_widths = [sum(sizes[m][0] for m in row) + H_GAP * (len(row) - 1) for row in rows]
    width = max(row_widths, default=1.0) + 2 * MARGIN
    boxes = {}
    y = -MARGIN
    for row, row_width in zip(rows, row_widths):
        row_height = max(sizes[m][1] for m in row)
        x = (width - row_width) / 2  # centre each layer
        for m in row:
            w, h = sizes[m]
            boxes[m] = (x + w / 2, y - row_height / 2, w, h)
            x += w + H_GAP
        y -= row_height + V_GAP
    height = -y - V_GAP + MARGIN
    return {m: (x, y + height, w, h) for m, (x, y, w, h) in boxes.items()}, width, height


def draw_with_matplotlib(graph, path: str, fmt: str) -> None:
    """Lay out ``graph`` and save it to ``path`` in format ``fmt`` (svg, png or pdf)."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
    except ImportError:
        raise ImportError("draw: without Graphviz's `dot`, drawing needs matplotlib: "
                          "pip install matplotlib (or install Graphviz for engine='dot')") from None
    from . import COLORS

    boxes, width, height = layout(graph)
    fig = Figure(figsize=(width, height))  # no pyplot: no global state, no display needed
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    _draw_clusters(ax, graph, boxes)
    for a, b in graph.edges:
        (xa, ya, _, ha), (xb, yb, _, hb) = boxes[a], boxes[b]
        long = ya - yb > 3  # skips layers (a residual connection): bow it off the column
        ax.add_patch(FancyArrowPatch((xa, ya - ha / 2), (xb, yb + hb / 2), arrowstyle="-|>",
                                     mutation_scale=7, linewidth=0.6, color="0.45",
                                     shrinkA=0, shrinkB=0,
                                     connectionstyle=f"arc3,rad={0.08 if long else 0}"))
    for n in graph.nodes:
        x, y, w, h = boxes[n.id]
        style = "round,pad=0,rounding_size=0.12" if n.kind == "op" else "square,pad=0"
        box = FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle=style,
                             facecolor=COLORS[n.kind], edgecolor="0.3", linewidth=0.6,
                             linestyle="--" if n.kind == "const" else "-")
        ax.add_patch(box)
        ax.text(x, y, n.label, ha="center", va="center", fontsize=FONT_SIZE,
                family="monospace", gid=n.id)  # the node's id in the SVG
    dpi = max(20, min(150, MAX_PIXELS / max(width, height)))
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "tinygrad_lite"}):
        fig.savefig(path, format=fmt, dpi=dpi)


def _draw_clusters(ax, graph, boxes) -> None:
    """A light frame around the nodes of each module, named at its top left corner. The layout
    does not keep modules apart, so two frames can overlap where modules share layers."""
    from matplotlib.patches import FancyBboxPatch

    members = {}
    for n in graph.nodes:
        for k in range(1, len(n.module) + 1):  # a node is in its module and every parent
            members.setdefault(n.module[:k], []).append(boxes[n.id])
    for module in sorted(members):
        pad = max(0.05, 0.3 - 0.05 * len(module))  # outer modules get the wider frames
        left = min(x - w / 2 for x, y, w, h in members[module]) - pad
        right = max(x + w / 2 for x, y, w, h in members[module]) + pad
        bottom = min(y - h / 2 for x, y, w, h in members[module]) - pad
        top = max(y + h / 2 for x, y, w, h in members[module]) + pad
        ax.add_patch(FancyBboxPatch((left, bottom), right - left, top - bottom,
                                    boxstyle="round,pad=0,rounding_size=0.08",
                                    facecolor=(0.5, 0.5, 0.6, 0.06), edgecolor="0.6",
                                    linewidth=0.5))
        # names of nested frames alternate between the left and right corner, so they never
        # sit on top of each other
        left_side = len(module) % 2 == 1
        ax.text(left + 0.05 if left_side else right - 0.05, top - 0.02, ".".join(module),
                ha="left" if left_side else "right", va="top", fontsize=FONT_SIZE - 1,
                color="0.35")
