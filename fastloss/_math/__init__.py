"""Scalar math of every loss, written once and compiled for each target by fastloss._compile."""
