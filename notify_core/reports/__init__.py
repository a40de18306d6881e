"""How the NOC is doing: the pure response report and its year-long archive."""
