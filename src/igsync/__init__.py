"""igsync: sync Instagram account insights from Meta's Graph API into a database."""

# The one place the version is written: hatch reads it for the package metadata, and a
# literal keeps `igsync --version` from importing importlib.metadata.
__version__ = "0.1.0"
