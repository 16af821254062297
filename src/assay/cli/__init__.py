"""The ``assay`` command line: a thin Typer + Rich face over ``assay.api`` and the domain.

Each command parses its arguments, calls one API or domain function, and formats the result:
Rich tables for people, ``--json`` for programs. Every ``AssayError`` becomes one line on stderr
and the error's exit code (see ``assay.cli.main``).
"""
