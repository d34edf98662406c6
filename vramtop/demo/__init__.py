"""Demo mode: a simulated GPU host driven by a scenario."""
