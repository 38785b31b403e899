"""The Carefront plugin SDK: what a hospital's plugin is written against.

A plugin imports this package and its own vendor libraries, never the portal.
"""

import pluggy

__version__ = "0.1.0"

PROJECT_NAME = "carefront"
"""The pluggy project name, and the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

__all__ = ["PROJECT_NAME", "__version__", "hookimpl", "hookspec"]
