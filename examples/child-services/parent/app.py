"""Parent: asks two child services in parallel and combines their answers.

As in Octue's child-services template, the children are ``analysis.children[key]``; ``ask``
returns ``(answer, question_uuid)``. The children's log records reach this service's logger
(and so its own asker), prefixed with the child's id and question uuid.
"""

import logging

logger = logging.getLogger(__name__)


def run(analysis):
    question = {"input_values": analysis.input_values, "timeout": 60}
    (elevations, _), (wind_speeds, _) = (
        analysis.children["elevation"].ask(**question),
        analysis.children["wind_speed"].ask(**question),
    )
    logger.info(
        "got %d elevations and %d wind speeds",
        len(elevations["output_values"]),
        len(wind_speeds["output_values"]),
    )
    analysis.output_values = {
        "elevations": elevations["output_values"],
        "wind_speeds": wind_speeds["output_values"],
        "windiest": max(
            zip(wind_speeds["output_values"], analysis.input_values["locations"], strict=True)
        )[1],
    }
