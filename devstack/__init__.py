"""Everything that runs vFXT DR without Azure: local stand-ins, the local Durable runner and the demo."""
