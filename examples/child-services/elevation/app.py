"""Elevation: a child service giving a (made-up, deterministic) ground height per location."""


def run(analysis):
    analysis.output_values = [
        round(100 + 10 * abs(lat) + 3 * abs(lon), 1)
        for lat, lon in analysis.input_values["locations"]
    ]
