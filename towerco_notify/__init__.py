"""Composition root and command line: the only code that imports all the packages."""
