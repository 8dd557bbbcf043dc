"""Mocap add-on placeholder (operators and panel are registered in a later step)."""
