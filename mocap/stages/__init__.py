"""Pipeline stages. Each module has a typed ``Config``, a pure ``run`` and a file-level ``main``."""
