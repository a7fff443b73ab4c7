"""The bottom layer: plain frozen records every other layer shares (the config schema, chat messages,
engine requests and results, cell results). No behaviour beyond validation and hashing, and no imports
from the rest of the package."""
