"""Wind speed: a child service giving a (made-up, deterministic) wind speed per location."""

import logging

logger = logging.getLogger(__name__)


def run(analysis):
    logger.info("computing wind speeds for %d locations", len(analysis.input_values["locations"]))
    analysis.output_values = [
        round(4 + 0.5 * abs(lat - lon), 2) for lat, lon in analysis.input_values["locations"]
    ]
