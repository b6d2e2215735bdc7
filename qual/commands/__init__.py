"""One module per further ``python -m qual`` command (see ``qual.cli.build_parser``).

Each module defines ``ORDER`` (its position in ``--help``) and ``register(subparsers)``.
Keep the top of each module light: import heavy libraries inside the command function.
"""
