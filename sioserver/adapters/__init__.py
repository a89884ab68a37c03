"""Adapters: where rooms live and how broadcasts fan out."""

