"""The app's doors: HTTP routes that start or steer workflows, the timer that schedules and reconciles, and
the health probe."""
