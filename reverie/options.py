"""Options of a pluggable part (a source format, a delivery channel), checked by the part itself."""


class OptionError(ValueError):
    """An option value that cannot work; the message names the field."""
