"""``python -m rollguard.demo``: see :mod:`rollguard.demo.run`."""

from rollguard.demo.run import main

raise SystemExit(main())
