"""Procedural pizza images, training and evaluation of the shipped models."""
