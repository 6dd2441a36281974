"""The app's doors: HTTP routes that start or steer workflows, and the timer that schedules and reconciles."""
