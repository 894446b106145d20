"""Lightning callbacks that make runs resumable exactly."""
