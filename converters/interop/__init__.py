"""Exchanges with other tools: EdgeML weights in, C arrays for firmware out."""
