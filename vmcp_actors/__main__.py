"""``python -m vmcp_actors`` is the ``vmcp-actors`` command."""

from vmcp_actors.cli import main

raise SystemExit(main())
