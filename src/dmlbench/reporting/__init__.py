"""Params/FLOPs counting, the README tables and static figures."""
