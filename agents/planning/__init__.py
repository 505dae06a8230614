"""Planning: the Animation Director (signals, bounds, hard rules), the Prompt Engineer and the plan types."""
