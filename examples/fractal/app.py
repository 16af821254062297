"""Fractal: a values-only service. Configuration and input values in, output values out.

Computes escape counts of the Mandelbrot set (or a Julia set, given ``julia_c``) on a small grid.
Ported from Octue's fractal template: only the imports would change.
"""

import logging

logger = logging.getLogger(__name__)


def escape_counts(width, height, x_range, y_range, n_iterations, julia_c=None):
    rows = []
    for j in range(height):
        y = y_range[0] + (y_range[1] - y_range[0]) * j / max(1, height - 1)
        row = []
        for i in range(width):
            x = x_range[0] + (x_range[1] - x_range[0]) * i / max(1, width - 1)
            z = complex(x, y)
            c = complex(*julia_c) if julia_c else z
            if not julia_c:
                z = 0j
            count = 0
            while abs(z) <= 2 and count < n_iterations:
                z = z * z + c
                count += 1
            row.append(count)
        rows.append(row)
    return rows


def run(analysis):
    config = analysis.configuration_values
    inputs = analysis.input_values or {}
    x_range = inputs.get("x_range", config["x_range"])
    y_range = inputs.get("y_range", config["y_range"])
    logger.info(
        "rendering %dx%d over x=%s y=%s", config["width"], config["height"], x_range, y_range
    )
    counts = escape_counts(
        config["width"],
        config["height"],
        x_range,
        y_range,
        config["n_iterations"],
        inputs.get("julia_c"),
    )
    analysis.send_monitor_message({"progress": 1.0})
    inside = sum(row.count(config["n_iterations"]) for row in counts)
    analysis.output_values = {"escape_counts": counts, "points_inside": inside}
