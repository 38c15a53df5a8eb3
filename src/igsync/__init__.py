"""igsync: sync Instagram account insights from Meta's Graph API into a database."""

from importlib.metadata import version

__version__ = version("igsync")
