"""The one error type of the guidance package: bad settings or inputs, named."""


class GuidanceInputError(ValueError):
    """A guidance input or setting is invalid; the message names it and says what is wrong."""
