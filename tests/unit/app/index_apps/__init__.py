"""Fixture apps for the offline index check: ok_app passes, every other module has exactly one defect."""
