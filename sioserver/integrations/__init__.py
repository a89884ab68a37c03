"""The only code that imports a web framework."""

