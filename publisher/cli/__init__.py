"""The command line, the only package that prints (see docs/design.md)."""

from publisher.cli.app import main

__all__ = ["main"]
