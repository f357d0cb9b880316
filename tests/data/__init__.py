"""Synthetic data files used by the dataset tests."""
