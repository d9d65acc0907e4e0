"""famlink: monthly data matching for the Troubled / Supporting Families programme."""

__version__ = "0.1.0"
