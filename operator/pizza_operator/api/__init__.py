"""Versioned API of the operator: `v1alpha1` is the only served version."""
