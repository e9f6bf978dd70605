"""The configuration as package data: the wheel ships this folder as ``pricing.conf`` (see ``pyproject.toml``), so
an installed task finds ``base.yml``, ``<env>.yml`` and ``expectations/`` with no source checkout
(``pricing.platform.config.conf_home``).  No code lives here."""
