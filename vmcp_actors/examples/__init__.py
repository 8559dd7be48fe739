"""The bundled example: three small, real MCP servers and a runtime config that runs them.

``vmcp-actors run`` without ``--config`` runs this example, so a newcomer sees the
runtime at work without writing a config or finding MCP servers first:

* ``notes`` (:mod:`vmcp_actors.examples.notes_server`): in-memory notes.
* ``clock`` (:mod:`vmcp_actors.examples.clock_server`): UTC time and date arithmetic.
* ``flaky`` (:mod:`vmcp_actors.examples.flaky_server`): weather helpers, and a server
  that crashes on purpose after ``--up`` seconds and refuses to start for ``--down``
  seconds after that, so the status visibly moves Pending -> Ready -> Degraded -> Ready
  with nobody touching anything.

Every server speaks MCP over stdio and is started as ``<python> -m <module>``.  The YAML
(:func:`example_config_path`) holds two placeholders, filled in by
:func:`example_config_text`:

* ``{python}``: the running interpreter (``sys.executable``), so the servers run in the
  same environment as the runtime, whatever venv that is.
* ``{pythonpath}``: the directory holding the ``vmcp_actors`` package.  stdio backends
  get a minimal environment (no ``PYTHONPATH``), so without it ``-m vmcp_actors...``
  would only work when the package is installed or the current directory happens to be
  the source checkout.

This module imports nothing heavy on purpose: ``python -m vmcp_actors.examples.<server>``
imports it first, and the flaky server must decide to fail fast within milliseconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

__all__ = ["EXAMPLE_CONFIG_NAME", "example_config_path", "example_config_text"]

EXAMPLE_CONFIG_NAME = "example.yaml"

_PYTHON_PLACEHOLDER = "{python}"
_PYTHONPATH_PLACEHOLDER = "{pythonpath}"


def example_config_path() -> Path:
    """The bundled example config, with its ``{python}``/``{pythonpath}`` placeholders."""
    return Path(__file__).resolve().with_name(EXAMPLE_CONFIG_NAME)


def example_config_text(python: str | None = None) -> str:
    """The bundled example config, ready to load: placeholders replaced.

    ``python`` defaults to ``sys.executable``.  Placeholders are replaced literally (not
    with ``str.format``: YAML flow mappings contain braces of their own), and only ever
    appear inside double-quoted YAML scalars, so the values are escaped for that (a
    JSON string body is a valid YAML double-quoted body: backslashes in Windows paths,
    quotes and non-ASCII all survive).
    """
    text = example_config_path().read_text(encoding="utf-8")
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    replacements = {_PYTHON_PLACEHOLDER: python or sys.executable, _PYTHONPATH_PLACEHOLDER: package_parent}
    for placeholder, value in replacements.items():
        text = text.replace(placeholder, _yaml_double_quoted_body(value))
    return text


def _yaml_double_quoted_body(value: str) -> str:
    """``value`` escaped for use between the double quotes of a YAML scalar."""
    return json.dumps(value)[1:-1]
