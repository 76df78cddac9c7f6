"""The ``rollguard`` command line. Each area is one module with one click group."""
